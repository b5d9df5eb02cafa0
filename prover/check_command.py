"""What `prover check` does once its options are parsed: FILE mode and JSONL mode."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prover.errors import UsageError
from prover.lean.filecheck import NoTheorem, check_file
from prover.lean.items_io import VerdictWriter, finished_keys, iter_pending, read_items
from prover.lean.pool import ReplPool
from prover.lean.remote import RemoteVerifier


def run_file(pool: ReplPool | RemoteVerifier, path: Path, text: str, *, as_json: bool) -> int:
    try:
        report = check_file(pool, str(path), text)
    except NoTheorem as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        rows = [
            (
                v.name,
                "accepted" if v.accepted else "REJECTED",
                v.reason,
                _short(v.detail, v.messages),
            )
            for v in report.theorems
        ]
        render_table(rows, f"{path} (Lean {report.lean_version or 'version unknown'})")
    return 0 if report.accepted else 1


def _short(detail: str, messages: list[dict]) -> str:
    errors = [m["data"] for m in messages if m.get("severity") == "error"]
    text = detail or (errors[0] if errors else "")
    first = text.splitlines()[0] if text else ""
    return first[:120]


def run_jsonl(pool: ReplPool | RemoteVerifier, items_path: Path, out: Path | None) -> int:
    items = read_items(items_path)  # validates every line before any REPL work
    done = finished_keys(out) if out is not None else set()
    writer = (
        VerdictWriter.open(out) if out is not None else VerdictWriter(sys.stdout, durable=False)
    )
    pending = list(iter_pending(items, done))
    keys = {id(item): key for key, item in pending}
    accepted = checked = 0
    try:
        for item, verdict in pool.check_many(item for _, item in pending):
            writer.write(keys[id(item)], verdict)
            checked += 1
            accepted += verdict.accepted
    finally:
        if out is not None:
            writer.close()
    skipped = len(items) - len(pending)
    stats = getattr(pool, "stats", None)  # a remote verifier keeps none
    print(
        f"prover check: {checked} checked, {accepted} accepted"
        + (f", {skipped} already in {out}" if skipped else "")
        + (f"; header elaborations: {stats.header_elaborations}" if stats else ""),
        file=sys.stderr,
    )
    return 0


def render_table(rows: list[tuple[str, str, str, str]], title: str) -> None:
    table = Table(title=title)
    for column in ("theorem", "verdict", "reason", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
