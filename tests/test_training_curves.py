"""training.curves: the numbers behind the experiment's training curves and table."""

from __future__ import annotations

import pytest

from training.curves import (
    curve_table,
    mean_over_seeds,
    plot_training_curves,
    series,
    smooth,
    span_mean,
)


def log(rewards: list[float], every: int = 5) -> list[dict]:
    """A TRL-like log history: one entry per `every` steps, a last summary entry without
    metrics (as TRL's train() appends)."""
    entries: list[dict] = [
        {"step": every * (i + 1), "reward": r, "entropy": 1.0 - r} for i, r in enumerate(rewards)
    ]
    entries.append({"step": every * len(rewards), "train_runtime": 12.0})
    return entries


def test_series_keeps_only_entries_with_the_metric_in_step_order():
    history = list(reversed(log([0.1, 0.2, 0.3])))
    assert series(history, "reward") == [(5, 0.1), (10, 0.2), (15, 0.3)]
    assert series(history, "missing") == []


def test_smooth_is_a_trailing_mean():
    assert smooth([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
    assert smooth([1, 2, 3], 1) == [1, 2, 3]


def test_span_mean_of_the_first_and_last_steps():
    history = log([0.0] * 10 + [1.0] * 10)  # steps 5..100
    assert span_mean(history, "reward", first=50) == 0.0
    assert span_mean(history, "reward", last=50) == 1.0
    assert span_mean(history, "reward", last=100) == 0.5
    assert span_mean(history, "nothing", first=50) is None


def test_mean_over_seeds_uses_the_steps_every_seed_logged():
    short, long = log([0.0, 0.2]), log([0.2, 0.4, 0.6])
    assert mean_over_seeds([short, long], "reward") == [(5, 0.1), (10, pytest.approx(0.3))]


def test_curve_table_shows_early_and_late_values_and_the_seed_range():
    runs = {"grpo": [log([0.0] * 10 + [0.5] * 10), log([0.0] * 10 + [0.25] * 10)]}
    table = curve_table(runs, span=50, metrics={"reward": "pass rate"})
    row = table.splitlines()[2]
    assert row == "| grpo | 2 | 0.000 → 0.375 (0.250–0.500) |"
    missing = curve_table({"x": [log([0.1])]}, metrics={"absent": "absent"})
    assert missing.splitlines()[2] == "| x | 1 | – |"


def test_plot_training_curves_writes_a_png(tmp_path):
    out = tmp_path / "curves.png"
    plot_training_curves({"a": [log([0.1, 0.2])], "b": [log([0.3]), log([0.2, 0.1])]}, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("rate", [0.0, 1.0, 0.37])
def test_a_flat_pass_rate_is_drawn_on_a_zero_to_one_axis(rate: float) -> None:
    from training.curves import training_curves_figure

    flat = [{"step": s, "reward": rate, "entropy": 1.5} for s in range(1, 6)]
    pass_rate, entropy, _ = training_curves_figure({"a": [flat]}).axes
    assert pass_rate.get_ylim() == (0.0, 1.0)  # not -0.04..0.04 around a flat 0
    low, high = entropy.get_ylim()  # other metrics keep their own scale
    assert low < 1.5 < high and high - low < 1


def test_a_rising_pass_rate_axis_still_spans_zero_to_one() -> None:
    from training.curves import training_curves_figure

    [pass_rate, *_] = training_curves_figure({"a": [log([0.2, 0.3, 0.4])]}).axes
    assert pass_rate.get_ylim() == (0.0, 1.0)
