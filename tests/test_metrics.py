"""pass@k against direct enumeration of every k-subset; bootstrap intervals."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.metrics import bootstrap_interval, default_ks, mean_pass_at_k, pass_at_k


def enumerated(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_enumeration_of_all_subsets(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(enumerated(n, c, k), abs=1e-12)


def test_edge_cases() -> None:
    assert pass_at_k(10, 0, 1) == 0.0 and pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 8, 3) == 1.0  # n - c < k: every 3-subset has a correct one
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(1000, 1, 1000) == 1.0
    assert pass_at_k(10_000, 5, 64) == pytest.approx(
        1 - math.comb(9995, 64) / math.comb(10_000, 64)
    )


@pytest.mark.parametrize(("n", "c", "k"), [(4, 1, 5), (4, 5, 1), (4, -1, 1), (4, 1, 0)])
def test_bad_arguments_are_clear_errors(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_default_ks() -> None:
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(10) == [1, 2, 4, 8, 10]


def test_mean_and_bootstrap() -> None:
    counts = [(4, 0), (4, 4), (4, 2), (4, 1)]
    assert mean_pass_at_k(counts, 1) == pytest.approx((0 + 1 + 0.5 + 0.25) / 4)
    low, high = bootstrap_interval([pass_at_k(n, c, 1) for n, c in counts], resamples=2000)
    assert 0.0 <= low <= 0.4375 <= high <= 1.0
    assert bootstrap_interval([0.5] * 10, resamples=100) == (0.5, 0.5)


def test_paired_bootstrap_drop() -> None:
    from harness.metrics import paired_bootstrap_drop

    base = [1.0] * 50 + [0.0] * 50
    same = list(base)
    assert paired_bootstrap_drop(base, same, resamples=1000) == (0.0, 0.0)
    worse = [0.0] * 20 + [1.0] * 30 + [0.0] * 50  # 20 problems lost
    drop, low = paired_bootstrap_drop(base, worse, resamples=1000)
    assert drop == pytest.approx(0.2) and low > 0.1
    noisy = [0.0, 1.0] * 25 + [1.0, 0.0] * 25  # as many lost as gained
    drop, low = paired_bootstrap_drop(base, noisy, resamples=1000)
    assert drop == pytest.approx(0.0) and low < 0
    with pytest.raises(ValueError):
        paired_bootstrap_drop([1.0], [1.0, 0.0])
