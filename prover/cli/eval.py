"""`prover eval`: sample N proofs per problem, verify them all, report pass@k."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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
    verifier_config,
)
from prover.errors import UsageError
from prover.prove.search import SearchConfig

if TYPE_CHECKING:
    from harness.eval_run import SearchSettings
    from prover.prompts import PromptFormat

# The checkout this code runs from (prover/cli/eval.py -> the repository): its git commit is
# recorded in a run's provenance.
ROOT = Path(__file__).resolve().parents[2]
# What defines a run's samples: resuming with any of these changed would mix two experiments.
IDENTITY = ("suite", "split", "n", "problems", "model", "backend", "prompt_format", "sampling",
            "seed", "search")  # fmt: skip


def eval_command(
    suite: Annotated[
        str,
        typer.Argument(
            help="A suite name (`prover suite list`), a JSONL file, a folder of "
            ".lean files, or hf:NAME."
        ),  # fmt: skip
    ],
    n: Annotated[int, typer.Option("--n", help="Samples per problem.", min=1)] = 8,
    k: Annotated[
        str | None,
        typer.Option("--k", help="pass@k for these k, e.g. 1,2,4 (default: 1, 2, 4, ... N)."),
    ] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only this split.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first M problems.", min=1)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run directory (default: runs/SUITE-MODEL-nN)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out; stored samples are kept.")
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Verdict cache shared across runs (a directory)."),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Name of this run in reports.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Regression gate: compare with this run's results.json; exit 1 on a "
            "significant drop.",
            rich_help_panel="CI gate",
        ),
    ] = None,
    max_drop: Annotated[
        float,
        typer.Option(
            "--max-drop",
            help="Largest tolerated drop in pass@1 or coverage.",
            min=0,
            rich_help_panel="CI gate",
        ),  # fmt: skip
    ] = 0.02,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Run generation and verification as Ray actors on this cluster (`local` "
            "starts one here, `auto` finds a running one).",
            rich_help_panel="Scale",
        ),
    ] = None,
    ray_generators: Annotated[
        int,
        typer.Option(
            "--ray-generators",
            help="Model replicas (one Ray actor each, one GPU each if any).",
            min=1,
            rich_help_panel="Scale",
        ),  # fmt: skip
    ] = 1,
    batch: Annotated[
        int,
        typer.Option(
            "--batch", help="Sequences per generate call.", min=1, rich_help_panel="Scale"
        ),  # fmt: skip
    ] = 64,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="best-first: each of the N samples is one best-first search over Lean's "
            "tactic states with a step-level model, instead of one sampled whole proof.",
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
    allow_version_mismatch: AllowVersionMismatch = False,
) -> None:
    """Sample N completions per problem, verify every one, and write RUN_DIR/results.json
    (pass@k, precision = pass@1, coverage = pass@N, 95% intervals), accepted.jsonl and a
    pass@k plot. Interrupted runs continue with --resume; exit 1 when the --baseline gate fails.
    With --search best-first each sample is one best-first search (docs/eval.md)."""
    from harness.suites import SuiteError, load_suite
    from harness.tasks import prompt_format_for
    from prover.models.base import SamplingParams
    from prover.models.registry import BACKENDS, default_model

    if backend.strip().lower() not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    refuse_search_options(search, expansions, tactics_per_state, verifier)
    if cache is not None and cache.exists() and not cache.is_dir():
        raise UsageError(f"--cache {cache}: not a directory")
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    try:
        loaded = load_suite(suite, split=split)
    except SuiteError as exc:
        raise UsageError(str(exc)) from None
    problems = loaded.problems[:limit] if limit else loaded.problems
    splits = {p.split for p in problems}
    split = split or (splits.pop() if len(splits) == 1 else None)
    ks = _parse_ks(k, n)
    model_name = model or default_model(backend)
    if search is not None and loaded.task != "lean":
        raise UsageError(
            f"--search applies to Lean suites only: {loaded.name} is a {loaded.task} suite, "
            "which has no tactic states"
        )
    search_settings: SearchSettings | None = None
    fmt: PromptFormat | None = None
    try:
        if search is None:
            fmt = prompt_format_for(loaded.task, model_name, prompt_format)
            format_name = fmt.name
        else:
            search_settings = _search_settings(
                search, model_name, prompt_format, expansions, tactics_per_state,
                temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
            )  # fmt: skip
            format_name = search_settings.step_format.name
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    kind = f"-{search}" if search else ""
    # like every other path a user gives, relative to the working directory, never to the code
    run_dir = out or Path("runs") / _slug(f"{loaded.name}-{Path(model_name).name}{kind}-n{n}")
    base_results = (
        _load_baseline(
            baseline,
            loaded.name,
            n,
            split,
            [p.name for p in problems],
            search_settings.record() if search_settings else None,
        )
        if baseline
        else None
    )
    sampling = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}
    manifest: dict[str, Any] = {
        "suite": loaded.name,
        "split": split,
        "n": n,
        "problems": [p.name for p in problems],
        "model": model_name,
        "backend": backend,
        "prompt_format": format_name,
        "sampling": sampling,
        # a new run without --seed draws one (recorded); a resumed one keeps its own
        "seed": seed if seed is not None or resume else secrets.randbelow(2**31),
        "label": label,
        "started_at": _now(),
    }
    if search_settings is not None:  # what defines a search's samples, beyond the model's
        manifest["search"] = search_settings.record()
    config = verifier_config(
        timeout=timeout, memory_mb=memory_mb, sandbox=sandbox, repl=repl, repl_cwd=repl_cwd,
        workers=workers, allow_native=allow_native, recycle_after=recycle_after,
        verifier_url=verifier, replay=not no_replay, header_timeout=header_timeout,
    )  # fmt: skip
    from harness.eval_run import EvalSettings, execute

    settings = EvalSettings(
        suite=loaded,
        problems=problems,
        n=n,
        ks=ks,
        prompt_format=fmt,
        params=SamplingParams(1, temperature, top_p, max_new_tokens),
        backend=backend,
        model=model_name,
        api_base=api_base,
        api_key=api_key,
        verifier_config=config,
        run_dir=run_dir,
        resume=resume,
        cache_dir=cache,
        manifest=manifest,
        identity=IDENTITY,
        ray_address=ray_address,
        ray_generators=ray_generators,
        batch=batch,
        git_commit=_git_commit(),
        resume_command=resume_command(sys.argv[1:], suite, run_dir),
        allow_version_mismatch=allow_version_mismatch,
        search=search_settings,
    )
    results = execute(settings)
    if base_results is not None:
        from harness.gate import GateError, compare_runs

        try:
            verdict = compare_runs(results, base_results, max_drop)
        except GateError as exc:
            raise UsageError(f"--baseline: {exc}") from None
        print(verdict.render(), file=sys.stderr)
        raise typer.Exit(1 if verdict.failed else 0)


def _search_settings(
    search: str,
    model: str,
    prompt_format: str | None,
    expansions: int | None,
    tactics_per_state: int | None,
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
) -> SearchSettings:
    """The search's settings; ValueError (one line) for a prompt format that is not a
    step-level one, or a model whose step-level format is unknown."""
    from harness.eval_run import SearchSettings
    from prover.step_prompts import choose_step_format

    step_format = choose_step_format(model, prompt_format)
    config = SearchConfig(
        expansions=expansions or SearchConfig.expansions,
        tactics_per_state=tactics_per_state or SearchConfig.tactics_per_state,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
    )
    return SearchSettings(search, config, step_format)


def resume_command(args: list[str], suite: str, run_dir: Path) -> str:
    """The command that continues this run, to print when it stops: the user's own arguments
    (the suite as given, a JSONL path with its `.jsonl`), `--out` pinned and `--resume` added.
    A key given with --api-key is left out: it would be printed to the terminal and logs."""
    if not args or args[0] != "eval":  # not run from the command line
        args = ["eval", suite]
    kept: list[str] = []
    dropped_key = False
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume":
            continue
        elif arg == "--api-key":
            skip = dropped_key = True
        elif arg.startswith("--api-key="):
            dropped_key = True
        else:
            kept.append(arg)
    if not any(a == "--out" or a.startswith("--out=") for a in kept):
        kept += ["--out", str(run_dir)]
    command = "prover " + shlex.join([*kept, "--resume"])
    return command + (" (with OPENAI_API_KEY set to the key)" if dropped_key else "")


def _parse_ks(text: str | None, n: int) -> list[int]:
    from harness.metrics import default_ks

    if text is None:
        return default_ks(n)
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UsageError(f"--k {text!r}: give whole numbers separated by commas") from None
    if not ks or ks[0] < 1:
        raise UsageError("--k: every k must be at least 1")
    if ks[-1] > n:
        raise UsageError(f"--k {ks[-1]} is larger than --n {n}: pass@k needs k <= n samples")
    return ks


def _load_baseline(
    path: Path,
    suite: str,
    n: int,
    split: str | None,
    problems: list[str],
    search: dict[str, Any] | None,
) -> dict[str, Any]:
    """Read and vet the baseline before hours of sampling, not after."""
    from harness.gate import GateError, check_baseline, load_results

    try:
        results = load_results(path)
        check_baseline(
            results, suite=suite, n=n, split=split, problems=problems, search=search
        )
    except GateError as exc:
        raise UsageError(f"--baseline: {exc}") from None
    return results


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
