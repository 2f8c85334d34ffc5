"""Benchmarks: run against 127.0.0.1 only, bounded in requests and time, results printed as tables."""
