"""Benchmarks that print our figures next to the obvious alternative, run in the same process."""
