"""Tests of kmerdb.engine (a package, so that module names do not clash)."""
