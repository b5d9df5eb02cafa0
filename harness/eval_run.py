"""What `prover eval` does once its options are parsed: open the run, the model and the
verifier (here or on Ray), run the loop with a progress bar, write the results."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from harness.results import CURVE, RESULTS, write_results
from harness.runner import EvalError, EvalPlan, run_eval
from harness.runner import Progress as LoopProgress
from harness.search_run import LocalSearcher, Searcher, SearchPlan, run_searches, search_settings
from harness.store import (
    RunStore,
    StoredRun,
    StoreError,
    read_manifest,
    write_failed,
    write_json_atomic,
)
from harness.suites import Problem, Suite
from harness.tasks import learn_lean_version, prompt_problem
from harness.verdict_cache import CacheError, VerdictCache
from prover.errors import MachineryFailure, UsageError
from prover.lean.lean_version import check_suite_version, parse_lean_version
from prover.lean.pool import VerifierConfig
from prover.models.base import SamplingParams
from prover.models.errors import ModelBackendError
from prover.prompts import PromptFormat
from prover.prove.search import SearchConfig
from prover.step_prompts import StepPromptFormat


@dataclass(frozen=True)
class SearchSettings:
    """`--search`: N independent searches per problem instead of N sampled whole proofs."""

    algorithm: str  # "best-first"
    config: SearchConfig
    step_format: StepPromptFormat

    def record(self) -> dict[str, Any]:
        """What run.json and results.json say of the search."""
        return search_settings(self.algorithm, self.config, self.step_format.name)


@dataclass(frozen=True)
class EvalSettings:
    suite: Suite
    problems: list[Problem]
    n: int
    ks: list[int]
    prompt_format: PromptFormat | None  # None with `search`: its step-level format instead
    params: SamplingParams
    backend: str
    model: str
    api_base: str | None
    api_key: str | None
    verifier_config: VerifierConfig
    run_dir: Path
    resume: bool
    cache_dir: Path | None
    manifest: dict[str, Any]
    identity: tuple[str, ...]
    ray_address: str | None
    ray_generators: int
    batch: int
    git_commit: str | None
    resume_command: str = ""  # what continues this run, printed when it stops
    allow_version_mismatch: bool = False  # run a suite on another Lean (warned, not refused)
    search: SearchSettings | None = None  # a run of searches (search_run.py)

    @property
    def format_name(self) -> str:
        if self.search is not None:
            return self.search.step_format.name
        assert self.prompt_format is not None
        return self.prompt_format.name


def make_verifier(task: str, config: VerifierConfig) -> Any:
    """The task's verifier: the Python one for countdown, else the Lean pool or server."""
    if task == "countdown":
        from harness.countdown import CountdownVerifier

        return CountdownVerifier()
    from prover.lean.verifiers import open_verifier

    return open_verifier(config)


def make_backend(backend: str, model: str, api_base: str | None, api_key: str | None) -> Any:
    from prover.models.registry import load_backend

    return load_backend(backend, model, api_base=api_base, api_key=api_key)


def execute(s: EvalSettings) -> dict[str, Any]:
    err = Console(stderr=True)
    store = RunStore(s.run_dir)
    manifest = _session_manifest(s)
    try:  # what the store would refuse, refused now: nothing is written before the checks
        if s.resume:
            store.check_resume(manifest, keys=s.identity)
        else:
            store.check_create()
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        verifier = _open_verifier(s, stack)
        failure: MachineryFailure | None = None
        version: str | None = None
        try:  # a known-good check first: a broken verifier stops the run before any model
            if s.suite.task == "lean":
                version = learn_lean_version(verifier, s.problems[0].header)
        except MachineryFailure as exc:
            failure = exc
        # a suite on another Lean is refused here, before the run directory holds anything
        version_warning = (
            check_suite_version(
                s.suite.name, s.suite.lean_version, version, allow_mismatch=s.allow_version_mismatch
            )
            if s.suite.task == "lean" and failure is None
            else None
        )
        run = _open_store(store, s, manifest)
        stack.callback(store.close)
        if failure is not None:  # the run is marked stopped, and `--resume` continues it
            store.close()
            _stopped_on_machinery(err, s, failure, verifier)
            raise failure
        if run.repaired:
            err.print(run.repaired, markup=False, highlight=False, soft_wrap=True)
        # a search stored without its verdict is done again: not kept
        stored = sum(
            1 for key, sample in run.samples.items()
            if key[1] < s.n and (sample.verified or s.search is None)
        )  # fmt: skip
        what = f"{s.search.algorithm} searches" if s.search else "samples"
        err.print(
            f"{s.suite.name}: {len(s.problems)} problems x {s.n} {what} -> {s.run_dir}"
            + (f" ({stored} stored {what} kept)" if stored else "")
        )
        if version_warning:
            err.print(version_warning, style="yellow", markup=False, soft_wrap=True)
        try:
            backend, generators = _open_backend(s, stack)
        except ModelBackendError as exc:
            raise UsageError(str(exc)) from None
        checker = _checker(s, version)
        if s.cache_dir is not None and checker is None:
            err.print("[yellow]warning: the checker's Lean version is unknown: --cache unused[/]")
        try:
            cache = VerdictCache(s.cache_dir if checker is not None else None)
        except CacheError as exc:
            raise UsageError(str(exc)) from None
        stack.callback(cache.close)
        try:
            with _progress_bar(err, searching=s.search is not None) as update:
                loop = _run_loop(s, manifest, checker, backend, generators, verifier, store, run,
                                 cache, update)  # fmt: skip
        except KeyboardInterrupt:
            store.close()
            _stopped(err, s, "interrupted")
            raise
        except MachineryFailure as exc:  # no verdict was stored for the checks it hit
            store.close()
            _stopped_on_machinery(err, s, exc, verifier)
            raise
        except (EvalError, UsageError) as exc:
            store.close()
            _stopped(err, s, str(exc))
            raise UsageError(str(exc)) from None
        except Exception as exc:  # unforeseen: still one line, still resumable
            store.close()
            why = f"stopped by {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            _stopped(err, s, why)
            raise UsageError(why) from None
        if cache.warning:
            err.print(f"[yellow]warning: {cache.warning}[/]")
    wall = time.monotonic() - started
    results = write_results(
        s.run_dir,
        suite=s.suite.name,
        split=s.manifest["split"],
        n=s.n,
        ks=s.ks,
        problems=s.problems,
        run=run,
        proof_of=_proof_of(s),
        provenance=_provenance(s, manifest, backend, version, loop),
        timings=_timings(wall, loop, run),
        machinery=machinery_counts(verifier),
        search=s.search.record() if s.search else None,
    )
    _summary(err, s, results)
    _plot(s.run_dir, results, err)
    return results


def _run_loop(
    s: EvalSettings,
    manifest: dict[str, Any],
    checker: str | None,
    backend: Any,
    generators: int,
    verifier: Any,
    store: RunStore,
    run: StoredRun,
    cache: VerdictCache,
    update: Any,
) -> LoopProgress:
    """The whole-proof loop (runner.py), or with --search the search loop (search_run.py)."""
    checker = checker or f"unknown {time.time()}"
    seed = int(manifest["seed"])
    if s.search is not None:
        plan = SearchPlan(
            problems=s.problems,
            n=s.n,
            step_format=s.search.step_format,
            config=s.search.config,
            seed=seed,
            checker=checker,
            parallel=int(getattr(verifier, "workers", 1) or 1),  # a Ray one: all its actors'
        )
        searcher = _searcher(s, plan, backend, verifier)
        return run_searches(plan, searcher, store, run, cache, on_progress=update)
    assert s.prompt_format is not None
    eval_plan = EvalPlan(
        problems=s.problems,
        n=s.n,
        prompt_format=s.prompt_format,
        params=s.params,
        seed=seed,
        checker=checker,
        chunk=min(16, s.batch),
        batch=s.batch,
    )
    return run_eval(
        eval_plan, backend, verifier, store, run, cache, on_progress=update, generators=generators
    )


def _searcher(s: EvalSettings, plan: SearchPlan, backend: Any, verifier: Any) -> Searcher:
    """Where the searches run: on the local pool, or with Ray each on a verifier actor's pool
    (harness/ray_engine.py), sampling from the generator actors."""
    if s.ray_address:
        return verifier.searcher(backend, plan.step_format)
    if not hasattr(verifier, "tactic_session"):  # the CLI refuses it first
        raise UsageError("--search needs a local verifier with a tactic mode")
    # an HTTP server takes concurrent requests; an in-process model one at a time
    shared = s.backend.strip().lower() == "openai"
    return LocalSearcher(backend, verifier, plan.step_format, shared_backend=shared)


def _proof_of(s: EvalSettings) -> Any:
    """A sample's proof text: a search's completion is its assembled proof already."""
    if s.search is not None:
        return lambda problem, completion: completion
    fmt = s.prompt_format
    assert fmt is not None
    return lambda problem, completion: fmt.proof_text(prompt_problem(problem), completion)


def _session_manifest(s: EvalSettings) -> dict[str, Any]:
    """The manifest of this session; a resumed run keeps its own seed (unless --seed) and
    start time. Reads the run directory, writes nothing."""
    manifest = dict(s.manifest)
    if not s.resume:
        return manifest
    try:
        stored = read_manifest(s.run_dir) if (s.run_dir / "run.json").exists() else {}
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    if manifest["seed"] is None:  # no --seed: the run's own
        manifest["seed"] = stored.get("seed")
    if not isinstance(manifest["seed"], int):
        raise UsageError(f"{s.run_dir}/run.json: no usable seed; pass --seed")
    manifest["started_at"] = stored.get("started_at", manifest["started_at"])
    return manifest


def _open_store(store: RunStore, s: EvalSettings, manifest: dict[str, Any]) -> StoredRun:
    try:
        return store.resume(manifest, keys=s.identity) if s.resume else store.create(manifest)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _open_verifier(s: EvalSettings, stack: contextlib.ExitStack) -> Any:
    """The verifier, here or as Ray actors (opened before the model: it is checked first)."""
    new_verifier = partial(make_verifier, s.suite.task, s.verifier_config)
    if s.ray_address:
        from harness.ray_engine import RayVerifier, connect

        connect(s.ray_address)
        return stack.enter_context(RayVerifier(new_verifier))
    return stack.enter_context(new_verifier())


def _open_backend(s: EvalSettings, stack: contextlib.ExitStack) -> tuple[Any, int]:
    """(backend, parallel generate calls), here or as Ray actors."""
    new_backend = partial(make_backend, s.backend, s.model, s.api_base, s.api_key)
    if s.ray_address:
        from harness.ray_engine import RayBackend

        backend = RayBackend(new_backend, replicas=s.ray_generators)
        stack.callback(backend.close)
        return backend, s.ray_generators
    backend = new_backend()
    stack.callback(backend.close)
    return backend, 1


def _checker(s: EvalSettings, version: str | None) -> str | None:
    """The verifier's identity in cache keys; None when it cannot be pinned down. Beyond the
    Lean version: the acceptance rules' revision and settings, and where Lean runs (another
    project or server may pin another Mathlib on the same Lean)."""
    import hashlib
    import json
    import os

    from prover.lean.acceptance import RULES_REVISION

    if s.suite.task == "countdown":
        return "countdown v1"
    if parse_lean_version(version) is None:  # no text that tells two Leans apart
        return None
    c = s.verifier_config
    where = json.dumps([
        c.verifier_url,
        c.repl or os.environ.get("PROVER_REPL"),
        c.repl_cwd or os.environ.get("PROVER_REPL_CWD"),
    ])  # fmt: skip
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    # `replay`: a verdict that no kernel replay backed is not one of a run that replays
    return (
        f"lean {version} rules={RULES_REVISION} native={c.allow_native} replay={c.replay} "
        f"where={digest}"
    )


@contextlib.contextmanager
def _progress_bar(err: Console, *, searching: bool = False) -> Iterator[Any]:
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rates]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=err, transient=False,
    )  # fmt: skip
    task = bar.add_task("searched" if searching else "verified", total=None, rates="")
    last = 0.0

    def update(p: LoopProgress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.1 and p.verified < p.total:  # redrawing costs more than a sample
            return
        last = now
        rate = p.accepted / p.verified if p.verified else 0.0
        rates = f"pass {rate:.1%}  solved {len(p.solved)}  " + (
            f"expansions {p.expansions}" if searching else f"generated {p.generated}"
        )
        bar.update(task, total=p.total, completed=p.verified, rates=rates)

    with bar:
        yield update


def machinery_counts(verifier: Any) -> dict[str, int]:
    """How often the verifier's machinery failed and was retried (a remote or Ray verifier
    keeps no counts here: zeros)."""
    stats = getattr(verifier, "stats", None)
    return {
        "retries": int(getattr(stats, "machinery_retries", 0)),
        "crash_rechecks": int(getattr(stats, "crash_rechecks", 0)),
    }


def _stopped_on_machinery(
    err: Console, s: EvalSettings, exc: MachineryFailure, verifier: Any
) -> None:
    """A run the machinery stopped leaves a results.json that says so (and no metrics): the
    gate and `prover report` refuse it, and no earlier session's figures stay behind."""
    cause = " ".join(str(exc).split())[:500]
    stopped = {
        "suite": s.suite.name,
        "split": s.manifest["split"],
        "stopped": f"verifier machinery failure: {cause}",
        "machinery": machinery_counts(verifier),
    }
    try:
        write_json_atomic(s.run_dir / RESULTS, stopped)
    except OSError as write_error:
        err.print(f"[yellow]warning: cannot mark {s.run_dir / RESULTS} stopped: {write_error}[/]")
    _stopped(err, s, "the verifier's machinery failed, no verdict was stored for it")


def _stopped(err: Console, s: EvalSettings, why: str) -> None:
    again = s.resume_command or f"prover eval {s.suite.name} ... --out {s.run_dir} --resume"
    # printed whole (no wrapping, no markup): a command to copy must survive the copy
    err.print(
        f"{why}: every stored sample is kept in {s.run_dir}; continue with `{again}`",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _provenance(
    s: EvalSettings,
    manifest: dict[str, Any],
    backend: Any,
    version: str | None,
    loop: LoopProgress,
) -> dict[str, Any]:
    return {
        "model": s.model,
        "model_revision": getattr(backend, "revision", None),
        "backend": s.backend,
        "prompt_format": s.format_name,
        "sampling": manifest["sampling"],
        "seed": manifest["seed"],
        "git_commit": s.git_commit,
        "lean_version": version,
        "task": s.suite.task,
        "suite_source": s.suite.source,
        "suite_lean_version": s.suite.lean_version,
        "label": manifest.get("label"),
        "started_at": manifest["started_at"],
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tokens_generated": loop.tokens,
        "ray_address": s.ray_address,
        "python": sys.version.split()[0],
    }


def _timings(wall: float, loop: LoopProgress, run: StoredRun) -> dict[str, Any]:
    verify_s = sum(sample.verify_s for sample in run.samples.values())
    return {
        "wall_s": round(wall, 3),  # this session (a resumed run counts its last session)
        "generate_s": round(loop.generate_s, 3),
        "verify_s": round(verify_s, 3),  # summed over checks, which run in parallel
        "verifier_calls": loop.verifier_calls,
        "samples_per_s": round(loop.total / wall, 3) if wall > 0 else None,
        "tokens_per_s": round(loop.tokens / loop.generate_s, 1) if loop.generate_s else None,
    }


def _plot(run_dir: Path, results: dict[str, Any], err: Console) -> None:
    try:
        from harness.plots import plot_pass_at_k

        plot_pass_at_k(results, run_dir / CURVE)
    except OSError as exc:  # a full disk: the run's files are not all written, say so
        raise write_failed(run_dir / CURVE, exc) from None
    except Exception as exc:  # a plot is never worth the results
        err.print(f"[yellow]warning: no pass@k plot ({exc})[/]")


def _summary(err: Console, s: EvalSettings, results: dict[str, Any]) -> None:
    kind = f" · {s.search.algorithm} search" if s.search else ""
    table = Table(title=f"{results['suite']} · {s.model}{kind} · n={s.n}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    for k, value in results["pass_at_k"].items():
        low, high = results["ci"]["pass_at_k"][k]
        table.add_row(f"pass@{k}", f"{value:.1%}", f"[{low:.1%}, {high:.1%}]")
    solved = sum(1 for row in results["problems"] if row["c"] > 0)
    err.print(table)
    search = results.get("search")
    if search is not None:
        used = search["expansions_used"]
        done = (
            f"expansions used: mean {used['mean']:.2f}, max {used['max']} of {search['expansions']}"
        )
    else:
        done = f"verdicts reused {results['cache_hit_rate']:.1%}"
    err.print(
        f"solved {solved}/{len(results['problems'])} problems · {done} · {s.run_dir / RESULTS}"
    )
