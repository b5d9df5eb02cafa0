"""Evaluation harness: benchmarks, sampling, verification, pass@k (see issue 4)."""
