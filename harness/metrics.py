"""pass@k with the unbiased estimator, and bootstrap intervals over problems.

pass@k for one problem with n samples of which c are correct is the probability that a random
k-subset of the n samples holds at least one correct one: 1 - C(n-c, k) / C(n, k) (Chen et al.
2021). Computed as a product, so large n never overflows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate for one problem: n samples, c of them correct."""
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0  # every k-subset holds a correct sample
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, plus n itself."""
    ks = []
    k = 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given as (n, c) pairs."""
    if not counts:
        raise ValueError("no problems")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float] | None = None,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` (the mean by default) over problems."""
    if not values:
        raise ValueError("no values")
    stat = statistic or (lambda xs: sum(xs) / len(xs))
    rng = random.Random(seed)
    m = len(values)
    draws = sorted(stat([values[rng.randrange(m)] for _ in range(m)]) for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    low = draws[int(tail * (resamples - 1))]
    high = draws[int((1.0 - tail) * (resamples - 1))]
    return low, high


def paired_bootstrap_drop(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Observed drop (mean baseline - mean candidate) over the same problems, and the lower
    bound of its one-sided `confidence` bootstrap interval (problems resampled in pairs): a
    regression gate fails only when that bound is above zero."""
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("paired samples: the same, non-empty list of problems in both runs")
    diffs = [b - c for b, c in zip(baseline, candidate, strict=True)]
    m = len(diffs)
    rng = random.Random(seed)
    draws = sorted(sum(diffs[rng.randrange(m)] for _ in range(m)) / m for _ in range(resamples))
    return sum(diffs) / m, draws[int((1.0 - confidence) * (resamples - 1))]


def bootstrap_mean_intervals(
    columns: dict[str, Sequence[float]],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the mean of each column (one value per problem), all
    from the same resampled problem sets; vectorised, for hundreds of problems x many metrics."""
    import numpy as np

    if not columns:
        return {}
    m = len(next(iter(columns.values())))
    if m == 0 or any(len(v) != m for v in columns.values()):
        raise ValueError("one value per problem in every column, and at least one problem")
    rng = np.random.default_rng(seed)
    table = np.asarray(list(columns.values()), dtype=np.float64)  # metrics x problems
    means = np.empty((len(columns), resamples))
    step = max(1, 2_000_000 // m)  # resamples per slice: memory stays bounded for big suites
    for start in range(0, resamples, step):
        # how often each problem is drawn in each resample, then all metrics in one product
        counts = rng.multinomial(m, np.full(m, 1.0 / m), size=min(step, resamples - start))
        means[:, start : start + len(counts)] = (counts @ table.T).T / m
    tail = (1.0 - confidence) / 2
    lows, highs = np.quantile(means, [tail, 1.0 - tail], axis=1)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(columns, lows, highs, strict=True)}
