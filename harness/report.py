"""The leaderboard of `prover report`: runs (validated results.json documents) as one table,
rendered for the terminal (rich), as Markdown, or as a self-contained HTML page."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

FIXED_COLUMNS = ("model / label", "suite", "split", "n")


@dataclass(frozen=True)
class Leaderboard:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]  # printed under the table: what the intervals are, suites mixed, ...

    @property
    def numeric(self) -> tuple[bool, ...]:
        """Which columns are right-aligned: n and the metrics."""
        return tuple(c not in FIXED_COLUMNS[:3] for c in self.columns)


def run_title(results: dict[str, Any]) -> str:
    """`model / label` (or the one given) naming a run in tables and plots."""
    provenance = results.get("provenance") or {}
    parts = [_short_model(provenance.get("model")), provenance.get("label")]
    return " / ".join(p for p in parts if p) or "(unnamed run)"


def _short_model(model: str | None) -> str | None:
    """A local checkpoint's absolute path, cut to its last two folders (hub names stay)."""
    if not model or not model.startswith("/"):
        return model
    parts = Path(model).parts
    return model if len(parts) <= 3 else "…/" + "/".join(parts[-2:])


def k_columns(runs: list[dict[str, Any]]) -> list[int]:
    """The powers of two among the pass@k keys of any run, ascending."""
    ks = {int(k) for run in runs for k in run["pass_at_k"]}
    return sorted(k for k in ks if k & (k - 1) == 0)


def ranked(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first: by coverage, then precision (pass@1), then name for a stable order."""
    return sorted(runs, key=lambda r: (-r["coverage"], -r["precision"], run_title(r)))


def cell(value: float | None, interval: list[float] | None) -> str:
    """`31.0% [25.1, 37.2]`; `-` where the run has no such metric."""
    if value is None:
        return "-"
    text = f"{value:.1%}"
    if interval is not None:
        text += f" [{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]"
    return text


def leaderboard(runs: list[dict[str, Any]]) -> Leaderboard:
    if not runs:
        raise ValueError("no runs")
    ks = k_columns(runs)
    rows = []
    for run in ranked(runs):
        ci = run["ci"]
        metrics = [
            cell(run["pass_at_k"].get(str(k)), ci.get("pass_at_k", {}).get(str(k))) for k in ks
        ]
        fixed = [run_title(run), run["suite"], run["split"] or "-", str(run["n"])]
        rows.append((*fixed, *metrics, cell(run["coverage"], ci["coverage"])))
    notes = ["95% bootstrap intervals over problems; sorted by coverage (pass@n), then pass@1."]
    suites = sorted({run["suite"] for run in runs})
    if len(suites) > 1:
        notes.append(f"{len(suites)} suites ({', '.join(suites)}): compare runs of one suite only.")
    columns = (*FIXED_COLUMNS, *(f"pass@{k}" for k in ks), "coverage")
    return Leaderboard(columns, tuple(rows), tuple(notes))


def render_rich(board: Leaderboard) -> Table:
    table = Table(title="prover report", caption="\n".join(board.notes))
    for column, numeric in zip(board.columns, board.numeric, strict=True):
        table.add_column(
            column,
            justify="right" if numeric else "left",
            min_width=None if numeric else 6,  # names stay readable in a narrow terminal
            overflow="fold",
        )
    for row in board.rows:
        table.add_row(*(_rich_cell(value) for value in row))
    return table


def _rich_cell(value: str) -> Text:
    """Text, not markup (names may hold `[...]`); an interval goes dim on a second line, so
    the table fits an 80-column terminal."""
    head, bracket, interval = value.partition(" [")
    if not bracket or not head.endswith("%"):
        return Text(value)
    return Text(head) + Text("\n[" + interval, style="dim")


def render_markdown(board: Leaderboard) -> str:
    def line(cells: tuple[str, ...]) -> str:
        # a name is text: no HTML tags, no column breaks
        return "| " + " | ".join(html.escape(c).replace("|", "\\|") for c in cells) + " |"

    rule = "|" + "|".join("---:" if num else "---" for num in board.numeric) + "|"
    body = [line(board.columns), rule, *(line(row) for row in board.rows)]
    return "\n".join([*body, "", *board.notes]) + "\n"


HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>prover report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.8rem; white-space: nowrap; }}
th {{ background: #f4f4f4; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
p.note {{ color: #555; }}
</style>
</head>
<body>
<h1>prover report</h1>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
{notes}
</body>
</html>
"""


def render_html(board: Leaderboard) -> str:
    def td(value: str, numeric: bool) -> str:
        attr = ' class="num"' if numeric else ""
        return f"<td{attr}>{html.escape(value)}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in board.columns)
    body = "\n".join(
        "<tr>" + "".join(td(v, num) for v, num in zip(row, board.numeric, strict=True)) + "</tr>"
        for row in board.rows
    )
    notes = "\n".join(f'<p class="note">{html.escape(n)}</p>' for n in board.notes)
    return HTML_PAGE.format(head=head, body=body, notes=notes)
