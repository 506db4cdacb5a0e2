"""Storage: data files, the LMDB catalog, locks, layers and their column encodings."""
