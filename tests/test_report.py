"""`prover report`: the leaderboard (terminal, Markdown, HTML), its errors, and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread
from test_gate import results_doc

from harness.plots import (
    pareto_frontier,
    plot_method_means,
    plot_pass_at_k,
    plot_precision_coverage,
)
from harness.report import cell, k_columns, leaderboard, render_html, render_markdown, run_title

from conftest import run_prover

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's C0 and C1


def run_doc(
    precision: float, coverage: float, *, model: str = "m", label: str | None = None, **kw: Any
) -> dict[str, Any]:
    """A document with the headline numbers set directly (the problems do not matter here)."""
    doc = results_doc([1, 2], model=model, label=label, **kw)
    n = str(doc["n"])
    doc.update(precision=precision, coverage=coverage)
    doc["pass_at_k"].update({"1": precision, n: coverage})
    doc["ci"].update(precision=[precision - 0.05, precision + 0.05])
    doc["ci"].update(coverage=[coverage - 0.04, coverage + 0.04])
    doc["ci"]["pass_at_k"].update({"1": doc["ci"]["precision"], n: doc["ci"]["coverage"]})
    return doc


def write_run(directory: Path, doc: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(doc))
    return directory


# --- the leaderboard -------------------------------------------------------------------------


def test_cells_show_the_value_and_its_interval() -> None:
    assert cell(0.31, [0.2512, 0.3719]) == "31.0% [25.1, 37.2]"
    assert cell(0.5, None) == "50.0%"
    assert cell(None, None) == "-"


def test_names() -> None:
    assert run_title(run_doc(0.1, 0.2, model="org/x")) == "org/x"
    assert run_title(run_doc(0.1, 0.2, model="org/x", label="t=0.7")) == "org/x / t=0.7"
    assert run_title({"provenance": {}}) == "(unnamed run)"
    local = run_doc(0.1, 0.2, model="/runs/exp/seed0/models/base/model", label="base s0")
    assert run_title(local) == "…/base/model / base s0"


def test_sorted_by_coverage_then_precision() -> None:
    runs = [
        run_doc(0.20, 0.60, model="a"),
        run_doc(0.50, 0.50, model="c"),
        run_doc(0.30, 0.60, model="b"),
    ]
    board = leaderboard(runs)
    assert [row[0] for row in board.rows] == ["b", "a", "c"]
    assert board.rows[0][-1] == "60.0% [56.0, 64.0]"
    assert board.rows[0][board.columns.index("pass@1")] == "30.0% [25.0, 35.0]"


def test_k_columns_are_the_union_of_powers_of_two() -> None:
    runs = [results_doc([1, 2], n=12), results_doc([1, 2], n=32)]  # n=12 gives pass@12 too
    assert k_columns(runs) == [1, 2, 4, 8, 16, 32]
    board = leaderboard(runs)
    assert board.columns == (
        "model / label",
        "suite",
        "split",
        "n",
        *(f"pass@{k}" for k in (1, 2, 4, 8, 16, 32)),
        "coverage",
    )
    row12 = next(row for row in board.rows if row[3] == "12")
    assert row12[board.columns.index("pass@16")] == "-"
    assert row12[board.columns.index("pass@32")] == "-"
    assert row12[-1] != "-"  # coverage is pass@12, shown though 12 is no power of two


def test_mixed_suites_are_noted() -> None:
    one = leaderboard([run_doc(0.1, 0.2), run_doc(0.2, 0.3)])
    assert len(one.notes) == 1
    mixed = leaderboard([run_doc(0.1, 0.2), run_doc(0.2, 0.3, suite="proofnet-test")])
    assert "2 suites (minif2f-test, proofnet-test)" in mixed.notes[1]
    assert {row[1] for row in mixed.rows} == {"minif2f-test", "proofnet-test"}


def test_markdown_table() -> None:
    board = leaderboard([run_doc(0.31, 0.55, model="a|b", label="<i>")])
    lines = render_markdown(board).splitlines()
    assert lines[0].startswith("| model / label | suite | split | n | pass@1 |")
    assert lines[1] == "|---|---|---|---:|---:|---:|---:|---:|---:|"
    assert lines[2].startswith(
        "| a\\|b / &lt;i&gt; | minif2f-test | test | 8 | 31.0% [26.0, 36.0] |"
    )
    assert lines[2].count(" | ") == len(board.columns) - 1  # the `|` in the name is escaped


def test_html_page_is_self_contained_and_escaped() -> None:
    page = render_html(leaderboard([run_doc(0.31, 0.55, model="<script>alert(1)</script>")]))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http" not in page and "src=" not in page  # nothing fetched from elsewhere
    assert '<td class="num">31.0% [26.0, 36.0]</td>' in page


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def two_runs(tmp_path: Path) -> list[str]:
    return [
        str(write_run(tmp_path / "runs" / "a", run_doc(0.31, 0.55, model="org/alpha"))),
        str(write_run(tmp_path / "runs" / "b", run_doc(0.41, 0.62, model="org/beta"))),
    ]


def test_cli_terminal_table(two_runs: list[str]) -> None:
    done = run_prover("report", *two_runs, env={"COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("org/beta") < done.stdout.index("org/alpha")
    assert "62.0%" in done.stdout and "[58.0, 66.0]" in done.stdout


def test_cli_markdown_and_html(two_runs: list[str]) -> None:
    md = run_prover("report", *two_runs, "--markdown")
    assert md.returncode == 0, md.stderr
    assert md.stdout.splitlines()[2].startswith("| org/beta | minif2f-test | test | 8 | 41.0%")
    page = run_prover("report", *two_runs, "--html")
    assert page.returncode == 0 and page.stdout.startswith("<!DOCTYPE html>")
    both = run_prover("report", *two_runs, "--markdown", "--html")
    assert both.returncode == 2
    assert both.stderr == "prover: choose one of --markdown, --html\n"


def test_cli_missing_and_invalid_runs_are_one_line(tmp_path: Path, two_runs: list[str]) -> None:
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text('{"suite": "x"}')
    cases = {
        "unfinished": "no results.json (is the run finished?)",
        "nope": "no such run directory or results.json",
        "bad": 'results.json: missing key "split"',
    }
    for name, message in cases.items():
        done = run_prover("report", two_runs[0], str(tmp_path / name))
        assert done.returncode == 2
        assert done.stderr.startswith(f"prover: {tmp_path / name}")
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""


def test_cli_plot(tmp_path: Path, two_runs: list[str]) -> None:
    out = tmp_path / "plane.png"
    done = run_prover("report", *two_runs, "--markdown", "--plot", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert done.stdout.startswith("| model / label")  # the table is still printed, unmixed
    assert f"wrote {out}" in done.stderr
    nowhere = run_prover("report", *two_runs, "--plot", str(tmp_path / "no" / "p.png"))
    assert nowhere.returncode == 2 and "cannot write there" in nowhere.stderr
    assert not (tmp_path / "no").exists()


# --- plots -----------------------------------------------------------------------------------


def test_pareto_frontier() -> None:
    points = [(0.3, 0.5), (0.4, 0.45), (0.2, 0.6), (0.25, 0.4), (0.4, 0.3), (0.1, 0.6)]
    # (0.25, 0.4) is dominated by (0.3, 0.5); (0.4, 0.3) by (0.4, 0.45); (0.1, 0.6) by (0.2, 0.6)
    assert pareto_frontier(points) == [2, 0, 1]
    assert pareto_frontier([(0.5, 0.5), (0.5, 0.5)]) == [0, 1]  # equal runs are both kept
    assert pareto_frontier([(0.1, 0.9)]) == [0]
    assert pareto_frontier([]) == []


def pixels_near(path: Path, rgb: tuple[int, int, int]) -> int:
    image = imread(path)[..., :3]
    return int((np.abs(image * 255 - np.array(rgb)).max(axis=-1) <= 3).sum())


def test_plot_pass_at_k(tmp_path: Path) -> None:
    out = tmp_path / "curve.png"
    plot_pass_at_k(results_doc([0, 1, 3, 8, 2, 0], n=32), out)
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    height, width, _ = imread(out).shape
    assert width > 400 and height > 300
    assert pixels_near(out, BLUE) > 200  # the curve
    assert pixels_near(out, ORANGE) == 0


def test_plot_precision_coverage_colours_suites(tmp_path: Path) -> None:
    one_suite = [run_doc(0.3, 0.5, model="a"), run_doc(0.4, 0.45, model="b", label="$x")]
    single, mixed = tmp_path / "single.png", tmp_path / "mixed.png"
    plot_precision_coverage(one_suite, single)
    plot_precision_coverage([*one_suite, run_doc(0.2, 0.3, suite="proofnet-test")], mixed)
    for out in (single, mixed):
        assert out.read_bytes().startswith(PNG_SIGNATURE)
        assert pixels_near(out, BLUE) > 100
    assert pixels_near(single, ORANGE) == 0
    assert pixels_near(mixed, ORANGE) > 50  # the second suite has its own colour
    with pytest.raises(ValueError):
        plot_precision_coverage([], tmp_path / "none.png")


def test_plot_method_means_draws_one_colour_per_method(tmp_path: Path) -> None:
    out, single = tmp_path / "means.png", tmp_path / "single.png"
    plot_method_means(
        {"base": [run_doc(0.1, 0.4), run_doc(0.12, 0.38)], "grpo": [run_doc(0.3, 0.2)]}, out
    )
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert pixels_near(out, BLUE) > 50 and pixels_near(out, ORANGE) > 50
    plot_method_means({"base": [run_doc(0.1, 0.4)], "later": []}, single)
    assert pixels_near(single, BLUE) > 20 and pixels_near(single, ORANGE) == 0
    with pytest.raises(ValueError):
        plot_method_means({"base": []}, tmp_path / "none.png")


@pytest.mark.parametrize(
    "counts", [[0, 1, 3, 8, 2, 0], [0, 0, 0, 0], [32, 32, 32], [1, 0, 0, 0, 0, 0, 0, 0]]
)
def test_the_pass_at_k_legend_covers_no_part_of_the_plot(counts: list[int]) -> None:
    from harness.plots import pass_at_k_figure

    fig = pass_at_k_figure(results_doc(counts, n=32))
    fig.canvas.draw()
    [ax] = fig.axes
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())  # outside the axes: no curve under it
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "pass@k", "95% bootstrap interval"}  # fmt: skip
    # and inside the saved figure, which bbox_inches="tight" grows to hold it
    assert fig.get_tightbbox().contains(legend.x0 / fig.dpi, legend.y0 / fig.dpi)


# --- the terminal table at 80 columns, and machinery retries ----------------------------------


def rendered(runs: list[dict[str, Any]], width: int) -> list[str]:
    from io import StringIO

    from rich.console import Console

    from harness.report import render_rich

    out = StringIO()
    Console(width=width, file=out, force_terminal=False).print(
        render_rich(leaderboard(runs), width=width)
    )
    return out.getvalue().splitlines()


def header_words(lines: list[str]) -> list[str]:
    """Each column's header as rich drew it, its lines joined by spaces."""
    head = [line.strip("┃").split("┃") for line in lines if line.startswith("┃")]
    columns = zip(*head, strict=True)
    return [" ".join(part.strip() for part in column if part.strip()) for column in columns]


@pytest.mark.parametrize("n", [8, 32, 1024])
@pytest.mark.parametrize("width", [80, 100, 200])
def test_headers_are_never_broken_mid_word(n: int, width: int) -> None:
    long_name = run_doc(0.31, 0.55, model="org/a-rather-long-model-name", label="t=0.7", n=n)
    lines = rendered([long_name, run_doc(0.41, 0.62, n=n)], width)
    words = header_words(lines)
    assert words[:5] == ["model / label", "suite", "split", "n", "pass@1"]
    assert words[-1] == "coverage"  # not "covera ge"
    assert all(w.startswith("pass@") and w[5:].isdigit() for w in words[4:-1]), words
    assert max(len(line) for line in lines) <= width  # and nothing cut at the right
    shown = len(words) - 5
    if shown < len(k_columns([long_name])):  # what does not fit is named, not silently lost
        assert f"left out to fit {width} columns" in " ".join(" ".join(lines).split())


def test_cli_table_at_80_columns(two_runs: list[str]) -> None:
    done = run_prover("report", *two_runs, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    assert header_words(done.stdout.splitlines())[-1] == "coverage"
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_machinery_retries_are_shown_only_when_there_were_some(tmp_path: Path) -> None:
    retried = {**run_doc(0.31, 0.55, model="org/alpha"),
               "machinery": {"retries": 3, "crash_rechecks": 1}}  # fmt: skip
    clean = {**run_doc(0.41, 0.62, model="org/beta"),
             "machinery": {"retries": 0, "crash_rechecks": 0}}  # fmt: skip
    notes = leaderboard([retried, clean, run_doc(0.2, 0.3, model="old")]).notes
    assert [n for n in notes if n.startswith("machinery")] == [
        "machinery retries: 3 in org/alpha (checks run again after the verifier's machinery "
        "failed; none counted as a verdict)"
    ]
    runs = [str(write_run(tmp_path / "a", retried)), str(write_run(tmp_path / "b", clean))]
    done = run_prover("report", *runs, "--markdown")
    assert done.returncode == 0, done.stderr
    assert "machinery retries: 3 in org/alpha" in done.stdout
    assert "machinery retries: 0" not in done.stdout
