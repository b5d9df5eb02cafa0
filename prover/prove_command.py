"""What `prover prove` does once its options are parsed."""

from __future__ import annotations

import difflib
import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from prover.models.base import ModelBackend, SamplingParams
from prover.prompts import PromptFormat
from prover.prove.loop import ProveReport, TargetResult, prove_text
from prover.prove.targets import find_targets


def run_prove(
    path: Path,
    text: str,
    *,
    backend: ModelBackend,
    prompt_format: PromptFormat,
    verifier: object,
    attempts: int,
    rounds: int,
    budget_s: float | None,
    params: SamplingParams,
    feedback: bool,
    mode: str,  # "in-place" | "output" | "diff"
    output: Path | None,
    as_json: bool,
) -> int:
    err = Console(stderr=True)
    _, targets = find_targets(text)
    if not targets:
        err.print(f"{path}: no `sorry` to fill")
        return 0

    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=False,
    )  # fmt: skip
    tasks: dict[int, TaskID] = {}

    def progress(result: TargetResult) -> None:
        key = id(result)
        if key not in tasks:
            tasks[key] = bars.add_task(result.target.display, total=attempts * rounds)
        if result.done:
            status = "[green]proved[/]" if result.proved else "[red]not proved[/]"
            bars.update(
                tasks[key],
                description=f"{result.target.display}: {status}",
                completed=attempts * rounds,
            )
        else:
            bars.update(tasks[key], completed=result.checked)

    err.print(f"{path}: {len(targets)} theorem(s) with `sorry`")
    with bars:
        report = prove_text(
            text, backend=backend, prompt_format=prompt_format, verifier=verifier,
            attempts=attempts, rounds=rounds, budget_s=budget_s, params=params,
            feedback=feedback, on_progress=progress,
        )  # fmt: skip
    written = _deliver(path, text, report, mode, output, as_json)
    if as_json:
        print(json.dumps(_as_json(path, report, written), ensure_ascii=False))
    else:
        _table(report, err)
    if report.error == "interrupted":
        print("prover: interrupted; the proofs found so far were kept", file=sys.stderr)
        return 130
    if report.error:
        print(f"prover: stopped early: {report.error}", file=sys.stderr)
        return 2
    return 0 if report.all_proved else 1


def _deliver(
    path: Path, text: str, report: ProveReport, mode: str, output: Path | None, as_json: bool
) -> str:
    """Write the result where asked; the input file changes only with --in-place. A write
    that fails falls back to printing the diff, so no proof is lost."""
    try:
        if mode == "in-place":
            if report.text != text:
                shutil.copy2(path, _backup_path(path))
                path.write_text(report.text, encoding="utf-8")
            return str(path)
        if mode == "output":
            assert output is not None
            output.write_text(report.text, encoding="utf-8")
            return str(output)
    except OSError as exc:
        print(f"prover: cannot write the result ({exc}); the diff follows", file=sys.stderr)
        as_json = False
    if not as_json:  # --json keeps stdout for the one JSON document
        diff = difflib.unified_diff(
            text.splitlines(keepends=True), report.text.splitlines(keepends=True),
            fromfile=str(path), tofile=f"{path} (proved)",
        )  # fmt: skip
        sys.stdout.writelines(diff)
    return ""


def _backup_path(path: Path) -> Path:
    """FILE.lean.bak, or .bak.1, .bak.2, ...: an earlier backup (the original) is never lost."""
    candidate = path.with_suffix(path.suffix + ".bak")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_suffix(f"{path.suffix}.bak.{n}")
    return candidate


def _as_json(path: Path, report: ProveReport, written: str) -> dict[str, object]:
    return {
        "file": str(path),
        "written_to": written or None,
        "all_proved": report.all_proved,
        "error": report.error,
        "theorems": [
            {
                "name": r.target.display,
                "proved": r.proved,
                "attempts": r.attempts,
                "rounds": r.rounds,
                "time_s": r.time_s,
                "tokens": r.tokens,
                "reasons": r.reasons,
            }
            for r in report.results
        ],
    }


def _table(report: ProveReport, console: Console) -> None:
    table = Table(title="prover prove")
    for column in ("theorem", "proved", "attempts", "time"):
        table.add_column(column)
    for r in report.results:
        table.add_row(
            r.target.display, "yes" if r.proved else "no", str(r.attempts), f"{r.time_s:.1f} s"
        )
    console.print(table)
