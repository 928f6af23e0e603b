"""Benchmarks: `python -m bench.bench` (see bench/bench.py)."""
