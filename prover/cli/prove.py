"""`prover prove`: its options, and what it does once they are parsed."""

from __future__ import annotations

import difflib
import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
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

from prover.cli.lean_file import read_lean_file
from prover.cli.model_options import (
    ApiBase,
    ApiKey,
    Backend,
    MaxNewTokens,
    Model,
    PromptFormatName,
    Seed,
    Temperature,
    TopP,
)
from prover.cli.search_options import (
    Expansions,
    TacticsPerState,
    refuse_search_options,
)
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
from prover.errors import UsageError
from prover.models.base import ModelBackend, SamplingParams
from prover.prompts import PromptFormat
from prover.prove.loop import ProveReport, TargetResult, prove_text
from prover.prove.search import SearchConfig
from prover.prove.targets import find_targets
from prover.step_prompts import StepPromptFormat


def run_prove(
    path: Path,
    text: str,
    *,
    backend: ModelBackend,
    prompt_format: PromptFormat | None,
    verifier: object,
    attempts: int,
    rounds: int,
    budget_s: float | None,
    params: SamplingParams,
    feedback: bool,
    mode: str,  # "in-place" | "output" | "diff"
    output: Path | None,
    as_json: bool,
    search: SearchConfig | None = None,
    step_format: StepPromptFormat | None = None,
) -> int:
    """Prove FILE's targets (by whole proofs, or with `search` by best-first searches in
    `step_format`), deliver the result and return the exit code."""
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
    # per theorem: candidates judged, or with a search the states expanded
    steps = attempts * (search.expansions if search is not None else rounds)

    def progress(result: TargetResult) -> None:
        key = id(result)
        if key not in tasks:
            tasks[key] = bars.add_task(result.target.display, total=steps)
        if result.done:
            status = "[green]proved[/]" if result.proved else "[red]not proved[/]"
            bars.update(
                tasks[key],
                description=f"{result.target.display}: {status}",
                completed=steps,
            )
        else:
            bars.update(tasks[key], completed=result.checked)

    err.print(f"{path}: {len(targets)} theorem(s) with `sorry`")
    with bars:
        if search is not None:
            from prover.prove.search_loop import search_text

            assert step_format is not None
            report = search_text(
                text, backend=backend, step_format=step_format, verifier=verifier,  # type: ignore[arg-type]
                attempts=attempts, budget_s=budget_s, config=search, on_progress=progress,
            )  # fmt: skip
        else:
            assert prompt_format is not None
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
                "expansions": r.expansions,
                "reasons": r.reasons,
            }
            for r in report.results
        ],
    }


def _table(report: ProveReport, console: Console) -> None:
    table = Table(title="prover prove")
    searched = any(r.expansions for r in report.results)
    columns = (
        ("theorem", "proved", "searches", "expansions", "time")
        if searched
        else ("theorem", "proved", "attempts", "time")
    )
    for column in columns:
        table.add_column(column)
    for r in report.results:
        row = [r.target.display, "yes" if r.proved else "no", str(r.attempts)]
        row += [str(r.expansions)] if searched else []
        table.add_row(*row, f"{r.time_s:.1f} s")
    console.print(table)


def prove(
    file: Annotated[Path, typer.Argument(help="A .lean file whose `sorry`s to fill.")],
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Rewrite FILE (a FILE.bak backup is kept).")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the filled file here.")
    ] = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff (the default).")
    ] = False,
    attempts: Annotated[
        int | None,
        typer.Option(
            help="Candidates sampled per round (default 8); with --search, independent "
            "searches per theorem (default 1).",
            min=1,
        ),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="Rounds per theorem at most (default 4).", min=1)
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Seconds per theorem at most (with --search: all its searches).", min=0),
    ] = None,
    feedback: Annotated[
        bool | None,
        typer.Option(
            "--feedback/--no-feedback",
            help="Show the model Lean's errors for its best failed attempt (default: on).",
        ),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="best-first: prove step by step, a best-first search over Lean's tactic "
            "states with a step-level model, instead of sampling whole proofs.",
            rich_help_panel="Search",
        ),
    ] = None,
    expansions: Expansions = None,
    tactics_per_state: TacticsPerState = None,
    backend: Backend = "transformers",
    model: Model = None,
    api_base: ApiBase = None,
    api_key: ApiKey = None,
    prompt_format: PromptFormatName = None,
    temperature: Temperature = 1.0,
    top_p: TopP = 0.95,
    max_new_tokens: MaxNewTokens = 2048,
    seed: Seed = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
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
    """Fill every `sorry` in FILE with a proof Lean accepted. Exit 0 if all were filled,
    1 if some remain, 2 on bad input. Without --in-place or --output, FILE is never changed."""
    from prover.lean.verifiers import open_verifier
    from prover.models.base import SamplingParams
    from prover.models.errors import ModelBackendError
    from prover.models.registry import default_model, load_backend
    from prover.prompts import format_for_model, get_format
    from prover.step_prompts import choose_step_format

    if sum((in_place, output is not None, diff)) > 1:
        raise UsageError("choose one of --in-place, --output, --diff")
    refuse_search_options(
        search,
        expansions,
        tactics_per_state,
        verifier,
        not_with_search=(
            (
                rounds is not None,
                "--rounds does not apply to --search: use --attempts (searches) instead",
            ),
            (
                feedback is not None,
                "--feedback does not apply to --search: a search reads Lean's answer to each "
                "tactic",
            ),
        ),
    )
    text = read_lean_file(file)
    if output is not None:  # found before hours of proving, not after
        if output.resolve() == file.resolve():
            raise UsageError("--output is FILE itself: use --in-place (it keeps a backup)")
        if output.is_dir() or not output.parent.is_dir():
            raise UsageError(f"{output}: cannot write there (no such directory, or a directory)")
    if not find_targets(text)[1]:  # nothing to prove: no Lean to start, no model to load
        print(f"{file}: no `sorry` to fill", file=sys.stderr)
        raise typer.Exit(0)
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
    model_name = model or default_model(backend)
    fmt: PromptFormat | None = None
    step_format: StepPromptFormat | None = None
    search_config: SearchConfig | None = None
    try:
        if search is None:
            fmt = get_format(prompt_format or format_for_model(model_name))
        else:
            step_format = choose_step_format(model_name, prompt_format)
            search_config = SearchConfig(
                expansions=expansions or SearchConfig.expansions,
                tactics_per_state=tactics_per_state or SearchConfig.tactics_per_state,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if attempts is None:
        attempts = 1 if search is not None else 8
    with open_verifier(config) as checker:
        try:
            llm = load_backend(backend, model_name, api_base=api_base, api_key=api_key)
        except ModelBackendError as exc:
            raise UsageError(str(exc)) from None
        try:
            code = run_prove(
                file,
                text,
                backend=llm,
                prompt_format=fmt,
                verifier=checker,
                attempts=attempts,
                rounds=rounds or 4,
                budget_s=budget,
                params=SamplingParams(attempts, temperature, top_p, max_new_tokens, seed),
                feedback=True if feedback is None else feedback,
                mode="in-place" if in_place else "output" if output else "diff",
                output=output,
                as_json=as_json,
                search=search_config,
                step_format=step_format,
            )
        finally:
            llm.close()
    raise typer.Exit(code)
