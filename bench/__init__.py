"""Benchmarks and the synthetic workload (``bench.workload``) that drive Leadflow over HTTP."""
