"""Benchmarks, run by hand (results in docs/benchmarks.md); nothing here ships or runs in CI."""
