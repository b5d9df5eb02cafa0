"""`prover check`: its options, FILE mode and JSONL mode."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from prover.cli.lean_file import read_lean_file
from prover.cli.verifier_options import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MEMORY_MB,
    DEFAULT_RECYCLE_AFTER,
    DEFAULT_SANDBOX,
    DEFAULT_TIMEOUT,
    AllowNative,
    HeaderTimeout,
    MemoryMb,
    NoReplay,
    RecycleAfter,
    Repl,
    ReplCwd,
    Sandbox,
    Timeout,
    VerifierUrl,
    Workers,
    verifier_config,
)
from prover.detail_text import detail_cell
from prover.errors import UsageError
from prover.lean.filecheck import FileReport, NoTheorem, check_file
from prover.lean.items_io import (
    InvalidRecord,
    VerdictWriter,
    finished_keys,
    iter_pending,
    read_items,
)
from prover.lean.pool import ReplPool
from prover.lean.remote import RemoteVerifier
from prover.lean.verdict import CheckItem


def run_file(pool: ReplPool | RemoteVerifier, path: Path, text: str, *, as_json: bool) -> int:
    try:
        report = check_file(pool, str(path), text)
    except NoTheorem as exc:
        raise UsageError(str(exc)) from None
    try:
        if as_json:
            print(json.dumps(report.to_json(), ensure_ascii=False), flush=True)
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
            title = f"{path} (Lean {report.lean_version or 'version unknown'})"
            render_table(rows, title, _notes(report))
    except OSError as exc:  # a full or broken standard output: no report, so no verdict
        raise UsageError(f"stdout: cannot write the report ({exc.strerror})") from None
    return 0 if report.accepted else 1


def _notes(report: FileReport) -> list[str]:
    """What the rows do not say: the file was judged declaration by declaration, and Lean's
    errors outside every theorem (which reject the file too)."""
    lines = []
    if report.per_declaration:
        reason = report.per_declaration.partition(":")[0]
        lines.append(
            f"The file as one command got no answer ({reason}): each declaration was then "
            "judged on its own."
        )
    errors = [m for m in report.file_messages if m.get("severity") == "error"]
    if errors:
        line = (errors[0].get("pos") or {}).get("line", "?")
        first = detail_cell(str(errors[0].get("data", "")), 160)
        lines.append(
            f"{len(errors)} error(s) outside any theorem (first, line {line}: {first}); "
            "--json lists them."
        )
    return lines


def _short(detail: str, messages: list[dict]) -> str:
    """The detail (its end kept: a crash's stderr), else the first line of Lean's first error."""
    if detail:
        return detail_cell(detail)
    errors = [m["data"] for m in messages if m.get("severity") == "error"]
    first = errors[0].splitlines()[0] if errors and errors[0] else ""
    return first[:120]


def refuse_output_over_input(items_path: Path, out: Path) -> None:
    """`--out` must not be the input: verdicts appended to it would become records."""
    same = items_path.resolve() == out.resolve()
    if not same and items_path.exists() and out.exists():
        same = os.path.samefile(items_path, out)  # a hard link
    if same:
        raise UsageError(f"--out {out} is the --jsonl input itself: write verdicts elsewhere")


def run_jsonl(pool: ReplPool | RemoteVerifier, items_path: Path, out: Path | None) -> int:
    if out is not None:
        refuse_output_over_input(items_path, out)
    entries = read_items(items_path)  # reads every line before any REPL work
    done = finished_keys(out) if out is not None else set()
    writer = (
        VerdictWriter.open(out) if out is not None else VerdictWriter(sys.stdout, durable=False)
    )
    if writer.repaired:
        print(writer.repaired, file=sys.stderr)
    pending = list(iter_pending(entries, done))
    invalid = [(key, e) for key, e in pending if isinstance(e, InvalidRecord)]
    checkable = [(key, e) for key, e in pending if isinstance(e, CheckItem)]
    keys = {id(item): key for key, item in checkable}
    accepted = checked = 0
    try:
        for key, bad in invalid:  # judged without Lean, written first
            writer.write(key, bad.verdict())
        for item, verdict in pool.check_many(item for _, item in checkable):
            writer.write(keys[id(item)], verdict)
            checked += 1
            accepted += verdict.accepted
    finally:
        if out is not None:
            writer.close()
    skipped = len(entries) - len(pending)
    stats = getattr(pool, "stats", None)  # a remote verifier keeps none
    print(
        f"prover check: {checked} checked, {accepted} accepted"
        + (
            f", {len(invalid)} invalid input (first: {items_path}:{invalid[0][1].line}: "
            f"{invalid[0][1].problem})"
            if invalid
            else ""
        )
        + (f", {skipped} already in {out}" if skipped else "")
        + (f"; header elaborations: {stats.header_elaborations}" if stats else ""),
        file=sys.stderr,
    )
    return 0


def render_table(
    rows: list[tuple[str, str, str, str]], title: str, notes: list[str] | None = None
) -> None:
    """The rows, then each note on a line of its own (the console's width, not the table's)."""
    table = Table(title=title)
    for column in ("theorem", "verdict", "reason"):
        table.add_column(column)
    table.add_column("detail", overflow="fold")  # a long path or URL is cut nowhere
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for note in notes or []:
        console.print(note, highlight=False, markup=False)


def check(
    file: Annotated[
        Path | None, typer.Argument(help="A .lean file: judge each theorem in it.")
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            "--jsonl", help="Check records {name, header, formal_statement, proof}, one per line."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="JSONL mode: append verdicts here (a re-run skips finished records)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="FILE mode: print one JSON document.")
    ] = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    memory_mb: MemoryMb = DEFAULT_MEMORY_MB,
    sandbox: Sandbox = DEFAULT_SANDBOX,
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    allow_native: AllowNative = False,
    recycle_after: RecycleAfter = DEFAULT_RECYCLE_AFTER,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    no_replay: NoReplay = False,
    verifier: VerifierUrl = None,
) -> None:
    """Did Lean accept these proofs? Strict: no error, no sorry, the benchmark's own statement,
    only the standard axioms. Exit 0 only if every proof in FILE is accepted."""
    from prover.lean.verifiers import open_verifier

    if (file is None) == (jsonl is None):
        raise UsageError("give either FILE or --jsonl ITEMS.jsonl")
    if jsonl is not None and as_json:
        raise UsageError("--json is for FILE mode; JSONL mode always writes JSON lines")
    if file is not None and out is not None:
        raise UsageError("--out is for --jsonl mode; FILE mode prints its report (--json)")
    if jsonl is not None and out is not None:
        refuse_output_over_input(jsonl, out)  # before any verdict is appended to the input
    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=allow_native,
        recycle_after=recycle_after,
        header_timeout=header_timeout,
        replay=not no_replay,
        verifier_url=verifier,
    )
    if file is not None:
        text = read_lean_file(file)  # bad input fails before any REPL starts
        with open_verifier(config) as checker:
            code = run_file(checker, file, text, as_json=as_json)
    else:
        assert jsonl is not None
        with open_verifier(config) as checker:
            code = run_jsonl(checker, jsonl, out)
    raise typer.Exit(code)

