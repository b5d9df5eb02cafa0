"""`prover suite list` and `prover suite check`: which suites there are, and whether every
statement of one elaborates with the Lean that will check its proofs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prover.cli.verifier_options import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MEMORY_MB,
    DEFAULT_RECYCLE_AFTER,
    DEFAULT_SANDBOX,
    AllowVersionMismatch,
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
)
from prover.errors import UsageError

if TYPE_CHECKING:  # imported lazily at run time: `prover --help` stays fast
    from harness.suite_check import SuiteCheckReport
    from harness.suites import Suite
    from prover.lean.pool import ReplPool
    from prover.lean.remote import RemoteVerifier

suite_app = typer.Typer(help="Benchmark suites: list and check them.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@suite_app.command("list")
def suite_list(as_json: JsonFlag = False) -> None:
    """The suites defined in benchmarks/*.yaml: Lean version, split, whether their data is
    here, what they are."""
    rows = suite_rows()
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Benchmark suites (benchmarks/*.yaml)")
    for column in ("suite", "Lean", "split", "data", "description"):
        table.add_column(column, overflow="fold" if column == "suite" else "ellipsis")
    for row in rows:
        if row["task"] != "lean":
            data = f"generated ({row['task']})"
        else:
            data = "here" if row["data_path"] else f"missing: {row['data']}"
        first_sentence = row["description"].split(". ")[0].rstrip(".")
        table.add_row(row["name"], row["lean_version"] or "-", row["split"] or "all", data,
                      first_sentence)  # fmt: skip
    Console().print(table)


def suite_rows() -> list[dict[str, Any]]:
    """One row per suite definition; a broken definition is listed, not fatal."""
    import yaml

    from harness.suites import data_search_paths, known_suites

    rows = []
    for name, path in known_suites().items():
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            spec = {"description": f"unreadable definition: {' '.join(str(exc).split())}"}
        if not isinstance(spec, dict):
            spec = {"description": "unreadable definition: not a mapping"}
        data = str(spec.get("data") or "")
        task = str(spec.get("task") or "lean")
        found: Path | None = None
        if task == "lean" and data and not data.startswith("hf:"):
            # where load_suite looks, in its order
            candidates = [Path(data).expanduser()]
            if not candidates[0].is_absolute():
                candidates = [folder / data for folder in data_search_paths()]
            found = next((c for c in candidates if c.exists()), None)
        version = spec.get("lean_version")
        rows.append(
            {
                "name": str(spec.get("name") or name),
                "description": " ".join(str(spec.get("description") or "").split()),
                "lean_version": None if version is None else str(version),
                "split": spec.get("split"),
                "task": task,
                "data": data,
                # an hf: dataset is looked for (offline) only when the suite is loaded
                "data_path": str(found) if found else (data if data.startswith("hf:") else None),
            }
        )
    return rows


@suite_app.command("check")
def suite_check(
    suite: Annotated[
        str,
        typer.Argument(
            help="A suite name (see `prover suite list`), a JSONL file, a folder of .lean "
            "files, or hf:NAME."
        ),
    ],
    split: Annotated[
        str | None,
        typer.Option("--split", help="Only this split (overrides the suite's own)."),
    ] = None,
    as_json: JsonFlag = False,
    timeout: Timeout = 60.0,  # statements only: faster than a proof's default
    memory_mb: MemoryMb = DEFAULT_MEMORY_MB,
    sandbox: Sandbox = DEFAULT_SANDBOX,
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    recycle_after: RecycleAfter = DEFAULT_RECYCLE_AFTER,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    no_replay: NoReplay = False,
    verifier: VerifierUrl = None,
    allow_version_mismatch: AllowVersionMismatch = False,
) -> None:
    """Elaborate every statement of SUITE with `sorry` and list those that do not (renamed
    lemmas, another Lean version), before proofs are searched for. Exit 0 if all elaborate,
    1 if some fail (Lean error, timeout, crash), 2 on bad input or on a checker whose Lean
    version differs from the suite's (unless --allow-version-mismatch)."""
    from harness.suite_check import checker_lean_version
    from harness.suites import SuiteError, load_suite
    from prover.cli.verifier_options import verifier_config
    from prover.lean.lean_version import check_suite_version
    from prover.lean.verifiers import open_verifier

    try:
        loaded = load_suite(suite, split=split)  # bad input fails before any REPL starts
    except SuiteError as exc:
        raise UsageError(str(exc)) from None
    task = getattr(loaded, "task", "lean")
    if task != "lean":
        raise UsageError(
            f"suite {loaded.name} is checked by {task}, not Lean: nothing to elaborate"
        )
    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=False,  # no proofs here, so no axioms to judge
        recycle_after=recycle_after,
        header_timeout=header_timeout,
        replay=not no_replay,
        verifier_url=verifier,
    )
    with open_verifier(config) as checker:
        version = checker_lean_version(checker, loaded)
        warning = check_suite_version(  # a checker on another Lean is refused (exit 2) here
            loaded.name, loaded.lean_version, version, allow_mismatch=allow_version_mismatch
        )
        code = run_suite_check(checker, loaded, as_json=as_json, version_warning=warning)
    raise typer.Exit(code)


def run_suite_check(
    checker: ReplPool | RemoteVerifier,
    suite: Suite,
    *,
    as_json: bool,
    version_warning: str | None = None,
) -> int:
    """Check `suite` with a progress bar on stderr; print the report; return the exit code.
    `version_warning`: what comparing the suite's Lean version with the checker's said."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from harness.suite_check import StatementResult, check_suite

    err = Console(stderr=True)
    if version_warning:
        err.print(version_warning, markup=False, highlight=False, soft_wrap=True)
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} fail"), TimeElapsedColumn(), console=err,
    )  # fmt: skip
    task = bars.add_task(f"{suite.name}", total=len(suite.problems), failed=0)
    failed = 0

    def progress(result: StatementResult) -> None:
        nonlocal failed
        failed += not result.elaborates
        bars.update(task, advance=1, failed=failed)

    with bars:
        report = check_suite(checker, suite, on_result=progress)
    stats = getattr(checker, "stats", None)  # a remote verifier keeps none
    if stats is not None:
        err.print(f"header elaborations: {stats.header_elaborations}", highlight=False)
    if as_json:
        doc = report.to_json()
        doc["lean_version_warning"] = version_warning
        print(json.dumps(doc, ensure_ascii=False))
    else:
        render_report(report)
    return 1 if report.failures else 0


def render_report(report: SuiteCheckReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from prover.detail_text import detail_cell

    out = Console()
    out.print(report.summary(), highlight=False)
    if report.failures:
        table = Table(title="Statements that do not elaborate")
        for column in ("problem", "status", "detail"):
            table.add_column(column, overflow="fold")
        for r in report.failures:
            table.add_row(r.name, r.status, detail_cell(r.detail))
        out.print(table)
    warned = [r for r in report.results if r.elaborates and r.warnings]
    if warned:
        out.print(
            f"{len(warned)} statement(s) elaborate with other warnings (first: {warned[0].name}: "
            f"{warned[0].warnings[0][:120]}); --json lists them",
            highlight=False,
            markup=False,
        )
