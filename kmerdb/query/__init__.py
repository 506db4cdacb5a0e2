"""The query engine and its worker pool."""
