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


def machinery_retries(results: dict[str, Any]) -> int:
    """How many checks of the run needed a machinery retry (0 for runs from before it was
    counted)."""
    return int((results.get("machinery") or {}).get("retries", 0))


def search_of(results: dict[str, Any]) -> dict[str, Any] | None:
    """A run of searches' settings and expansions (None for sampled whole proofs, and for runs
    from before searches were recorded)."""
    search = results.get("search")
    return search if isinstance(search, dict) else None


def row_title(results: dict[str, Any]) -> str:
    """The run's title in the table, with its search algorithm when each sample was a search:
    the same model proving whole proofs and by search must not look like one run."""
    search = search_of(results)
    title = run_title(results)
    return f"{title} · {search.get('algorithm', 'search')}" if search else title


def search_note(results: dict[str, Any]) -> str | None:
    """One line on a run of searches: its settings and the expansions it used."""
    search = search_of(results)
    if search is None:
        return None
    parts = [f"{search.get('prompt_format', '?')} prompts"]
    if search.get("tactics_per_state") is not None:
        parts.append(f"{search['tactics_per_state']} tactics per state")
    budget = []
    if search.get("expansions") is not None:
        budget.append(f"{search['expansions']} expansions")
    if search.get("time_s") is not None:
        budget.append(f"{search['time_s']:g} s")
    if budget:
        parts.append(f"at most {' and '.join(budget)} a search")
    if search.get("length_exponent") is not None:
        parts.append(f"length exponent {search['length_exponent']:g}")
    line = f"{search.get('algorithm', 'search')} search in {run_title(results)}: " + ", ".join(
        parts
    )
    used = search.get("expansions_used")
    if isinstance(used, dict) and used.get("mean") is not None:
        line += f"; expansions used: mean {used['mean']:.2f}, max {used.get('max', '?')}"
    return line


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
        fixed = [row_title(run), run["suite"], run["split"] or "-", str(run["n"])]
        rows.append((*fixed, *metrics, cell(run["coverage"], ci["coverage"])))
    notes = ["95% bootstrap intervals over problems; sorted by coverage (pass@n), then pass@1."]
    suites = sorted({run["suite"] for run in runs})
    if len(suites) > 1:
        notes.append(f"{len(suites)} suites ({', '.join(suites)}): compare runs of one suite only.")
    for run in ranked(runs):
        note = search_note(run)
        if note:
            notes.append(note)
    for run in ranked(runs):
        retries = machinery_retries(run)
        if retries:
            notes.append(
                f"machinery retries: {retries} in {run_title(run)} (checks run again after the "
                "verifier's machinery failed; none counted as a verdict)"
            )
    columns = (*FIXED_COLUMNS, *(f"pass@{k}" for k in ks), "coverage")
    return Leaderboard(columns, tuple(rows), tuple(notes))


def render_rich(board: Leaderboard, width: int | None = None) -> Table:
    """The terminal table, `width` columns wide at most (the terminal's; None: unbounded).

    Every column is at least as wide as its header's longest word, so that no header breaks
    mid-word ("covera ge"): where the table would then be too wide, pass@k columns are left
    out (the middle ones first; pass@1 and coverage stay) and a note says which; where it is
    still too wide, the columns get exact widths (rich's own squeezing can go below a
    column's minimum and break it)."""
    columns = list(board.columns)
    minimum = {c: _min_width(board, c) for c in columns}
    left_out: list[str] = []
    ks = [c for c in columns if c.startswith("pass@")]
    droppable = [*_middle_first(ks[1:-1]), *ks[-1:]] if len(ks) > 1 else []
    while width is not None and droppable and _table_width(minimum, columns) > width:
        dropped = droppable.pop(0)
        columns.remove(dropped)
        left_out.append(dropped)
    widths = _fixed_widths(board, columns, minimum, width)
    notes = list(board.notes)
    if left_out:
        names = ", ".join(sorted(left_out, key=board.columns.index))
        notes.append(f"{names} left out to fit {width} columns (a wider terminal or --markdown "
                     "shows them).")  # fmt: skip
    table = Table(title="prover report", caption="\n".join(notes))
    index = [board.columns.index(c) for c in columns]
    for column in columns:
        table.add_column(
            column,
            justify="right" if board.numeric[board.columns.index(column)] else "left",
            min_width=minimum[column],
            width=widths.get(column),
            overflow="fold",
        )
    for row in board.rows:
        table.add_row(*(_rich_cell(row[i]) for i in index))
    return table


# the widest line a metric cell needs ("100.0%"; an interval folds into halves no wider)
_METRIC_WIDTH = len("100.0%")
_NAME_WIDTH = 6  # names stay readable in a narrow terminal


def _min_width(board: Leaderboard, column: str) -> int:
    word = max(len(w) for w in column.split())
    if column == "n":
        return max(word, *(len(row[board.columns.index("n")]) for row in board.rows))
    numeric = board.numeric[board.columns.index(column)]
    return max(word, _METRIC_WIDTH if numeric else _NAME_WIDTH)


def _natural_width(board: Leaderboard, column: str) -> int:
    """The width the column takes unsqueezed: its header, or its widest cell line."""
    i = board.columns.index(column)
    lines = [line for row in board.rows for line in _cell_lines(row[i])]
    return max(len(column), *(len(line) for line in lines))


def _cell_lines(value: str) -> list[str]:
    text = _rich_cell(value).plain
    return text.split("\n")


def _table_width(widths: dict[str, int], columns: list[str]) -> int:
    """Rich's width of the table at these column widths: one space of padding each side of a
    cell, and a border left, right and between columns."""
    return sum(widths[c] + 3 for c in columns) + 1


def _fixed_widths(
    board: Leaderboard, columns: list[str], minimum: dict[str, int], width: int | None
) -> dict[str, int]:
    """Exact column widths where the natural ones do not fit `width` ({}: they fit): each
    column its minimum, then what is left to the names first and the metrics after, each up
    to its natural width."""
    natural = {c: _natural_width(board, c) for c in columns}
    if width is None or _table_width(natural, columns) <= width:
        return {}
    widths = dict(minimum)
    spare = width - _table_width(minimum, columns)
    by_need = sorted(columns, key=lambda c: board.numeric[board.columns.index(c)])
    for column in by_need:  # stable: names in order, then the metrics in order
        grant = max(0, min(spare, natural[column] - widths[column]))
        widths[column] += grant
        spare -= grant
    return {c: widths[c] for c in columns}


def _middle_first(items: list[str]) -> list[str]:
    """The items ordered from the middle outwards (the ends of a pass@k curve say most)."""
    rest, out = list(items), []
    while rest:
        out.append(rest.pop(len(rest) // 2))
    return out


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
