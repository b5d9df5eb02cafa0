"""Training curves from TRL log histories (`trainer.state.log_history`): each metric against the
step, per method, averaged over seeds; and a table of each metric early and late in training.

A run's pass@k after training says what it ended as; these say how it got there: a training
pass rate that never rises, or entropy and answer length falling together, is collapse, not
learning.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

LogHistory = Sequence[Mapping[str, Any]]
# metric key in the log -> axis title
DEFAULT_METRICS: dict[str, str] = {
    "reward": "training pass rate",
    "entropy": "token entropy (nats)",
    "completions/mean_length": "completion length (tokens)",
}
# Metrics that are fractions of samples (the verifier's 0/1 reward's mean is one)
RATE_METRICS = frozenset({"reward", "rewards/verifier/mean", "alpha_dpg/pass_rate"})


def series(log: LogHistory, metric: str) -> list[tuple[int, float]]:
    """(step, value) of every log entry that has the metric, in step order."""
    points = [(int(e["step"]), float(e[metric])) for e in log if metric in e and "step" in e]
    return sorted(points)


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what there is so far)."""
    out: list[float] = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def mean_over_seeds(logs: Sequence[LogHistory], metric: str) -> list[tuple[int, float]]:
    """The metric's mean over seeds at each step that every seed logged."""
    per_seed = [dict(series(log, metric)) for log in logs]
    if not per_seed:
        return []
    steps = sorted(set.intersection(*(set(s) for s in per_seed)))
    return [(step, statistics.fmean(s[step] for s in per_seed)) for step in steps]


def span_mean(
    log: LogHistory, metric: str, *, first: int | None = None, last: int | None = None
) -> float | None:
    """Mean of the metric over the entries logged in the first `first` steps, or in the last
    `last` steps of the run; None when no entry falls there."""
    points = series(log, metric)
    if not points:
        return None
    if first is not None:
        chosen = [v for step, v in points if step <= first]
    else:
        assert last is not None
        end = points[-1][0]
        chosen = [v for step, v in points if step > end - last]
    return statistics.fmean(chosen) if chosen else None


def curve_table(
    runs: Mapping[str, Sequence[LogHistory]],
    *,
    span: int = 50,
    metrics: Mapping[str, str] = DEFAULT_METRICS,
) -> str:
    """Markdown: per method, each metric over the first and the last `span` steps, mean over
    seeds (and, with several seeds, the lowest and highest seed's value)."""
    header = (
        "| method | seeds | "
        + " | ".join(f"{title}: first {span} → last {span}" for title in metrics.values())
        + " |"
    )
    lines = [header, "|" + "---|" * (len(metrics) + 2)]
    for name, logs in runs.items():
        cells = []
        for metric in metrics:
            early = [v for log in logs if (v := span_mean(log, metric, first=span)) is not None]
            late = [v for log in logs if (v := span_mean(log, metric, last=span)) is not None]
            if not early or not late:
                cells.append("–")
                continue
            cell = f"{_number(statistics.fmean(early))} → {_number(statistics.fmean(late))}"
            if len(late) > 1:
                cell += f" ({_number(min(late))}–{_number(max(late))})"
            cells.append(cell)
        lines.append(f"| {name} | {len(logs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"


def plot_training_curves(
    runs: Mapping[str, Sequence[LogHistory]],
    out: Path,
    *,
    metrics: Mapping[str, str] = DEFAULT_METRICS,
    window: int = 5,
) -> None:
    """One panel per metric; per method a thick line (mean over seeds, smoothed over `window`
    log entries) over thin ones (each seed). Written as PNG to `out`."""
    fig = training_curves_figure(runs, metrics=metrics, window=window)
    fig.savefig(out, format="png", bbox_inches="tight")


def training_curves_figure(
    runs: Mapping[str, Sequence[LogHistory]],
    *,
    metrics: Mapping[str, str] = DEFAULT_METRICS,
    window: int = 5,
) -> Figure:
    """The figure `plot_training_curves` writes; a rate's axis is [0, 1] whatever the curve."""
    fig = Figure(figsize=(5 * len(metrics), 4), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colors = [f"C{i}" for i in range(10)]
    for ax, (metric, title) in zip(axes, metrics.items(), strict=True):
        # a rate's line may lie on the axis's edge (all 0, all 1): drawn over the frame
        style = {"clip_on": False, "zorder": 3} if metric in RATE_METRICS else {}
        for color, (name, logs) in zip(colors * 10, runs.items(), strict=False):
            for log in logs:
                points = series(log, metric)
                if points:
                    steps, values = zip(*points, strict=True)
                    ax.plot(steps, smooth(values, window), color=color, alpha=0.25, lw=0.8,
                            **style)  # fmt: skip
            mean = mean_over_seeds(logs, metric)
            if mean:
                steps, values = zip(*mean, strict=True)
                ax.plot(steps, smooth(values, window), color=color, lw=2, label=name, **style)
        if metric in RATE_METRICS:
            # autoscaling a flat line gives -0.04..0.04: a rate lies in [0, 1]
            ax.set_ylim(0.0, 1.0)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no step 1.5
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="best")
    return fig
