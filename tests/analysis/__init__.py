"""Tests of kmerdb.analysis (a package, so that module names do not clash)."""
