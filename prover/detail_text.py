"""A verdict's or a failure's detail as one table cell shows it.

A process failure's detail ends with what the process wrote on stderr (`REPL died (end of
output; exit status 1; stderr: ... lake: error: no such package)`): its end is what says what
went wrong, so a long detail keeps its start and its end, and loses its middle.
"""

from __future__ import annotations

# Shown whole up to this length (the table wraps it over a few lines)
CELL_LIMIT = 240
_HEAD = 72  # of a longer one: this much of its start, the rest of the limit from its end
_GAP = " … "


def detail_cell(text: str, limit: int = CELL_LIMIT) -> str:
    """`text` on one line (line breaks and runs of spaces become one space); when longer than
    `limit`, its start and its end joined by ` … `, `limit` characters in all."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = min(_HEAD, limit // 3)
    tail = limit - head - len(_GAP)
    return flat[:head].rstrip() + _GAP + flat[-tail:].lstrip()
