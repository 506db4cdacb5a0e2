"""Console tests (a package, so that their module names do not clash with tests/ modules)."""
