"""Tests of kmerdb.ops (a package, so that module names do not clash)."""
