"""Tests of kmerdb.core (a package, so that module names do not clash)."""
