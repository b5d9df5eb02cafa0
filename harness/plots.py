"""PNG plots of runs (results.json documents): one run's pass@k curve, and the
precision-coverage plane of several runs (pass@1 against pass@n, as in the alpha-DPG paper).

Figures are drawn on the Agg canvas directly, never through pyplot: no display is needed and
no global figure state is left behind.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.report import run_title


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (at least as high in both coordinates,
    higher in one), ordered by x ascending; equal points are all kept."""
    front = [
        i
        for i, (x, y) in enumerate(points)
        if not any((qx >= x and qy >= y) and (qx > x or qy > y) for qx, qy in points)
    ]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(7, 5), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, out: Path) -> None:
    fig.savefig(out, format="png", bbox_inches="tight")


def plot_pass_at_k(results: dict[str, Any], out: Path) -> None:
    """pass@k against k (log2 axis) for one run, with its bootstrap interval as a band."""
    _save(pass_at_k_figure(results), out)


def pass_at_k_figure(results: dict[str, Any]) -> Figure:
    """The figure `plot_pass_at_k` writes."""
    ks = sorted(int(k) for k in results["pass_at_k"])
    values = [results["pass_at_k"][str(k)] * 100 for k in ks]
    intervals = results["ci"].get("pass_at_k", {})
    fig, ax = _figure()
    banded = [k for k in ks if str(k) in intervals]
    lows = [intervals[str(k)][0] * 100 for k in banded]
    highs = [intervals[str(k)][1] * 100 for k in banded]
    if banded:
        ax.fill_between(banded, lows, highs, alpha=0.25, color="C0", label="95% bootstrap interval")
    ax.plot(ks, values, marker="o", color="C0", label="pass@k")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    # room for the band (not always 0-100: low scores would be a flat line at the bottom)
    ax.set_ylim(0, min(102, max(values + highs) + 8))
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k (%)")
    ax.grid(alpha=0.3)
    # below the axes: inside, any corner can hide part of a curve and its band
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, frameon=False)
    split = f" ({results['split']})" if results.get("split") else ""
    ax.set_title(
        f"{_plain(run_title(results))}\n{results['suite']}{split}, n={results['n']}, "
        f"{len(results['problems'])} problems",
        fontsize=10,
    )
    return fig


def plot_precision_coverage(runs: list[dict[str, Any]], out: Path) -> None:
    """One point per run: pass@1 (x) against coverage, pass@n (y), with interval bars, one colour
    per suite, and each suite's Pareto frontier as a dashed staircase."""
    if not runs:
        raise ValueError("no runs to plot")
    suites = sorted({run["suite"] for run in runs})
    colour = {suite: f"C{i % 10}" for i, suite in enumerate(suites)}
    fig, ax = _figure()
    for suite in suites:
        members = [run for run in runs if run["suite"] == suite]
        points = [(run["precision"] * 100, run["coverage"] * 100) for run in members]
        for run, (x, y) in zip(members, points, strict=True):
            ax.errorbar(
                x,
                y,
                xerr=_bar(x, run["ci"]["precision"]),
                yerr=_bar(y, run["ci"]["coverage"]),
                fmt="o",
                color=colour[suite],
                capsize=3,
                elinewidth=1,
            )
            ax.annotate(
                _plain(run_title(run)),
                (x, y),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
        front = [points[i] for i in pareto_frontier(points)]
        # steps-pre: between two frontier runs the attainable coverage is the lower one
        ax.plot(
            [p[0] for p in front],
            [p[1] for p in front],
            drawstyle="steps-pre",
            linestyle="--",
            color=colour[suite],
            label=f"{suite}: Pareto frontier" if len(suites) > 1 else "Pareto frontier",
        )
    _plane_axes(ax)
    ax.legend(loc="lower right", fontsize=8)
    subtitle = _n_subtitle(runs)
    if len(suites) > 1:
        subtitle += f"; mixed suites ({len(suites)}): compare within one colour only"
    ax.set_title(f"precision-coverage plane\n{subtitle}", fontsize=10)
    _save(fig, out)


def plot_method_means(methods: Mapping[str, Sequence[dict[str, Any]]], out: Path) -> None:
    """The precision-coverage plane of methods run over several seeds: per method, its seeds'
    runs as faint dots and their mean as a labelled point with ± one standard deviation over
    seeds as bars (none for a single seed), and the Pareto frontier of the means. Readable where
    one labelled point per run is not."""
    if not any(methods.values()):
        raise ValueError("no runs to plot")
    fig, ax = _figure()
    names = [name for name, runs in methods.items() if runs]
    means: list[tuple[float, float]] = []
    for i, name in enumerate(names):
        xs = [run["precision"] * 100 for run in methods[name]]
        ys = [run["coverage"] * 100 for run in methods[name]]
        colour = f"C{i % 10}"
        ax.scatter(xs, ys, color=colour, alpha=0.35, s=14, linewidths=0)
        x, y = statistics.fmean(xs), statistics.fmean(ys)
        spread = len(xs) > 1
        ax.errorbar(
            x,
            y,
            xerr=statistics.stdev(xs) if spread else None,
            yerr=statistics.stdev(ys) if spread else None,
            fmt="o",
            color=colour,
            capsize=3,
            elinewidth=1,
            label=f"{_plain(name)} ({len(xs)} seed{'s' if spread else ''})",
        )
        means.append((x, y))
    front = [means[i] for i in pareto_frontier(means)]
    ax.plot([p[0] for p in front], [p[1] for p in front], drawstyle="steps-pre", linestyle="--",
            color="grey", label="Pareto frontier of the means")  # fmt: skip
    _plane_axes(ax)
    ax.legend(loc="best", fontsize=8)
    runs = [run for name in names for run in methods[name]]
    title = f"precision-coverage plane: mean ± sd over seeds\n{_n_subtitle(runs)}"
    ax.set_title(title, fontsize=10)
    _save(fig, out)


def _plane_axes(ax: Any) -> None:
    ax.set_xlabel("precision: pass@1 (%)")
    ax.set_ylabel("coverage: pass@n (%)")
    ax.grid(alpha=0.3)


def _n_subtitle(runs: Sequence[dict[str, Any]]) -> str:
    """The runs' sample count, flagged when they differ (their coverages are then unequal k)."""
    ns = sorted({run["n"] for run in runs})
    return f"n={ns[0]}" if len(ns) == 1 else f"n={', '.join(map(str, ns))} (differs)"


def _bar(value: float, interval: Sequence[float]) -> list[list[float]]:
    """Asymmetric error bar (in %) from a [low, high] fraction interval."""
    return [[max(0.0, value - interval[0] * 100)], [max(0.0, interval[1] * 100 - value)]]


def _plain(text: str) -> str:
    """Matplotlib reads `$...$` as mathtext: a `$` in a run name stays a dollar sign."""
    return text.replace("$", r"\$")
