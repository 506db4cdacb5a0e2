"""Tests of kmerdb.query (a package, so that module names do not clash)."""
