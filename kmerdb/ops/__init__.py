"""Operations that write: build, merge, append, remove, compact, reindex, set operations, maintenance."""
