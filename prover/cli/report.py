"""`prover report RUN_DIR...`: a leaderboard of finished runs, and the precision-coverage plot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from prover.errors import UsageError


def report_command(
    runs: Annotated[
        list[Path],
        typer.Argument(metavar="RUN_DIR", help="Run folders holding results.json (or the files)."),
    ],
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
    as_html: Annotated[
        bool, typer.Option("--html", help="Print a self-contained HTML page.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also write the precision-coverage plane here (PNG)."),
    ] = None,
) -> None:
    """A leaderboard across runs: pass@k and coverage with 95% intervals, best coverage first."""
    from rich.console import Console

    from harness.gate import ResultsError, load_results
    from harness.report import leaderboard, render_html, render_markdown, render_rich

    if markdown and as_html:
        raise UsageError("choose one of --markdown, --html")
    if plot is not None and (plot.is_dir() or not plot.parent.is_dir()):
        raise UsageError(f"{plot}: cannot write there (no such directory, or a directory)")
    try:
        results = [load_results(path) for path in runs]
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    board = leaderboard(results)
    if markdown:
        sys.stdout.write(render_markdown(board))
    elif as_html:
        sys.stdout.write(render_html(board))
    else:
        console = Console()
        console.print(render_rich(board, width=console.width))
    if plot is not None:
        from harness.plots import plot_precision_coverage

        try:
            plot_precision_coverage(results, plot)
        except OSError as exc:
            raise UsageError(f"{plot}: cannot write ({exc.strerror})") from None
        print(f"prover report: wrote {plot}", file=sys.stderr)
