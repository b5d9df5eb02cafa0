"""Evaluation harness: benchmarks, sampling, verification, pass@k."""
