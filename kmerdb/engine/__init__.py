"""Execution: the executors every parallel operation runs its tasks through."""
