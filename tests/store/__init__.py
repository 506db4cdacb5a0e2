"""Tests of kmerdb.store (a package, so that module names do not clash)."""
