"""The eval loop of `prover eval --search best-first`: N independent best-first searches per
problem (prover/prove/search.py), each one sample of the run store, so that pass@k, precision
and coverage mean what they mean for sampled whole proofs.

A search's sample holds the assembled proof the strict verifier accepted as its completion
(`by` and the tactics), with that check's verdict; a search that found nothing is a failed
sample with an empty completion and the reason `search_exhausted` (no open state was left to
expand) or `search_budget` (the expansion or time budget ran out: the detail says which). Each
sample also keeps the search's own figures (`Sample.search`: expansions, why it stopped, ...),
from which results.json counts the expansions used.

Searches run in parallel, as many as the pool has workers: a search pins one process for its
tactic states and lends it back for its final whole-proof check. Where a search runs is a
`Searcher`: here on the local pool (`LocalSearcher`), or with Ray on a verifier actor's own
pool, sampling from the generator actors (harness/ray_engine.py `RaySearcher`); the loop, the
store and the cache stay here either way. A MachineryFailure stops the run as it is (never a
sample): `--resume` runs the searches not stored, and only those.

The verdict cache: a search is never served from it (its outcome depends on the model's
samples, not on a text), and a failed search writes nothing to it (it has no text). An accepted
proof's verdict is written under the hash of its whole check item, the key a whole-proof check
of the same text has: that verdict is the strict verifier's on exactly that item.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.runner import EvalError, Progress
from harness.store import RunStore, Sample, StoredRun
from harness.suites import Problem
from harness.tasks import check_item
from harness.verdict_cache import VerdictCache, text_hash
from prover.errors import MachineryFailure
from prover.models.base import Completion, ModelBackend, Prompt, SamplingParams
from prover.prove.search import (
    SearchConfig,
    SearchProblem,
    SearchResult,
    SearchVerifier,
    best_first_search,
    search_seed,
)
from prover.step_prompts import StepPromptFormat

SEARCH_ALGORITHMS = ("best-first",)
SEARCH_EXHAUSTED = "search_exhausted"  # every open state expanded: nothing left to try
SEARCH_BUDGET = "search_budget"  # the expansion or the time budget ran out first
SEARCH_SOURCE = "search"  # `Sample.source` of a search that found nothing (no check ran)


@dataclass(frozen=True)
class SearchPlan:
    problems: list[Problem]
    n: int  # searches per problem
    step_format: StepPromptFormat
    config: SearchConfig  # its seed is set per search (`search_seed`)
    seed: int
    checker: str  # the verifier's identity in cache keys
    parallel: int = 1  # searches at once


def search_settings(algorithm: str, config: SearchConfig, step_format: str) -> dict[str, Any]:
    """The settings that define a search run's samples: in run.json (a resume with other
    settings is refused) and in results.json."""
    return {
        "algorithm": algorithm,
        "expansions": config.expansions,
        "tactics_per_state": config.tactics_per_state,
        "length_exponent": config.length_exponent,
        "time_s": config.time_s,
        "tactic_timeout_s": config.tactic_timeout_s,
        "heartbeats": config.heartbeats,
        "prompt_format": step_format,
    }


def search_problem(problem: Problem) -> SearchProblem:
    """The search of a suite problem: the check item's header, context and statement."""
    item = check_item(problem, "")
    return SearchProblem(item.name, item.header, item.formal_statement, context=item.context)


def pending_searches(plan: SearchPlan, run: StoredRun) -> list[tuple[Problem, int]]:
    """The searches without a stored verdict (problem order, index order). A sample stored
    without its verdict (a kill between the two lines) is a search not finished: done again."""
    return [
        (problem, index)
        for problem in plan.problems
        for index in range(plan.n)
        if not _done(run.samples.get((problem.name, index)))
    ]


def _done(sample: Sample | None) -> bool:
    return sample is not None and sample.verified


def search_sample(problem: Problem, index: int, result: SearchResult, checker: str) -> Sample:
    """One search as a stored, decided sample (see the module docstring)."""
    figures = {
        "stopped": result.stopped,
        "expansions": result.expansions,
        "tactics_sent": result.tactics_sent,
        "tactics_banned": result.tactics_banned,
        "states": result.states,
        "merged": result.merged,
        "rejected": result.rejected,
        "time_s": result.time_s,
        "missing_logprobs": result.missing_logprobs,
    }
    if result.proof is not None and result.verdict is not None and result.verdict.accepted:
        verdict = result.verdict
        return Sample(
            problem.name, index, result.proof, result.tokens, result.stopped,
            accepted=True, reason=verdict.reason, detail=verdict.detail,
            text_hash=text_hash(checker, check_item(problem, result.proof)),
            source="verifier", verify_s=verdict.time_s, search=figures,
        )  # fmt: skip
    return Sample(
        problem.name, index, "", result.tokens, result.stopped,
        accepted=False, reason=failed_reason(result), detail=failed_detail(result),
        source=SEARCH_SOURCE, search=figures,
    )  # fmt: skip


def failed_reason(result: SearchResult) -> str:
    return SEARCH_EXHAUSTED if result.stopped == "exhausted" else SEARCH_BUDGET


def failed_detail(result: SearchResult) -> str:
    why = {
        "exhausted": f"no open state left after {result.expansions} expansions",
        "expansions": f"the budget of {result.expansions} expansions ran out",
        "time": f"the time budget ran out after {result.expansions} expansions",
    }.get(result.stopped, f"stopped ({result.stopped}) after {result.expansions} expansions")
    if result.rejected:
        why += f"; {result.rejected} path(s) closed the goals but the whole proof was rejected"
    return why


class TimedBackend:
    """The model as searches share it: calls one at a time unless the backend takes them
    concurrently (an in-process model does not), with the time spent in them counted (waiting
    for a turn included)."""

    def __init__(self, backend: ModelBackend, *, shared: bool) -> None:
        self.backend = backend
        self.model = getattr(backend, "model", "")
        self.revision = getattr(backend, "revision", None)
        self._lock = None if shared else threading.Lock()
        self._count = threading.Lock()
        self.generate_s = 0.0

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        started = time.monotonic()
        try:
            if self._lock is None:
                return self.backend.generate(prompts, params)
            with self._lock:
                return self.backend.generate(prompts, params)
        finally:
            with self._count:
                self.generate_s += time.monotonic() - started

    def close(self) -> None:
        pass  # the backend's owner closes it


class Searcher(Protocol):
    """Where one search runs. `search` raises what `best_first_search` raises (a
    MachineryFailure as itself); `generate_s` is the time its searches spent sampling."""

    generate_s: float

    def search(self, problem: SearchProblem, config: SearchConfig) -> SearchResult: ...


class LocalSearcher:
    """Searches on this machine's pool, the model called from here."""

    def __init__(
        self,
        backend: ModelBackend,
        verifier: SearchVerifier,
        step_format: StepPromptFormat,
        *,
        shared_backend: bool = False,  # the backend takes concurrent calls (an HTTP server)
    ) -> None:
        self.model = TimedBackend(backend, shared=shared_backend)
        self.verifier = verifier
        self.step_format = step_format

    @property
    def generate_s(self) -> float:
        return self.model.generate_s

    def search(self, problem: SearchProblem, config: SearchConfig) -> SearchResult:
        return best_first_search(
            problem,
            backend=self.model,
            step_format=self.step_format,
            verifier=self.verifier,
            config=config,
        )


def run_searches(
    plan: SearchPlan,
    searcher: Searcher,
    store: RunStore,
    run: StoredRun,
    cache: VerdictCache,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Fill `run` up to `plan.n` searched samples per problem. Raises MachineryFailure when the
    machinery stops a search, EvalError when the model or a search fails otherwise,
    KeyboardInterrupt on interrupt; stored samples survive each."""
    by_name = {p.name for p in plan.problems}
    progress = Progress(total=len(plan.problems) * plan.n)
    for sample in run.samples.values():
        if sample.problem in by_name and sample.index < plan.n and sample.verified:
            progress.generated += 1
            progress.tokens += sample.tokens
            progress.expansions += int((sample.search or {}).get("expansions", 0))
            _count(progress, sample)
    todo: queue.Queue[tuple[Problem, int]] = queue.Queue()
    for pending in pending_searches(plan, run):
        todo.put(pending)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                problem, index = todo.get_nowait()
            except queue.Empty:
                break
            config = dataclasses.replace(plan.config, seed=search_seed(plan.seed, index))
            try:
                result = searcher.search(search_problem(problem), config)
            except MachineryFailure as exc:  # stops the run as it is: never a sample
                events.put(("error", exc))
                return
            except BaseException as exc:  # handed to the loop, which stops the run
                events.put(("error", EvalError(f"{_who(exc)} failed: {_one_line(exc)}")))
                return
            events.put(("searched", (problem, index, result)))
        events.put(("worker done", None))

    workers = max(1, min(plan.parallel, todo.qsize() or 1))
    threads = [
        threading.Thread(target=work, name=f"search-{i}", daemon=True) for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    running = workers
    try:
        while progress.verified < progress.total:
            if on_progress is not None:
                on_progress(progress)
            kind, payload = events.get()
            if kind == "error":
                raise payload
            if kind == "worker done":
                running -= 1
                if running == 0 and progress.verified < progress.total:
                    raise EvalError("the searches ended before every sample was stored")
                continue
            problem, index, result = payload
            sample = search_sample(problem, index, result, plan.checker)
            run.bytes += store.add_decided([sample])
            run.samples[(sample.problem, sample.index)] = sample
            if sample.accepted and sample.text_hash is not None and sample.reason is not None:
                cache.put(sample.text_hash, True, sample.reason, sample.detail)
            progress.generated += 1
            progress.tokens += sample.tokens
            progress.expansions += result.expansions
            progress.verifier_calls += result.rejected + (1 if result.proved else 0)
            progress.generate_s = searcher.generate_s
            _count(progress, sample)
        if on_progress is not None:
            on_progress(progress)
    finally:
        stop.set()
        cache.commit()
    progress.generate_s = searcher.generate_s
    return progress


def _count(progress: Progress, sample: Sample) -> None:
    progress.verified += 1
    if sample.accepted:
        progress.accepted += 1
        progress.solved.add(sample.problem)


def _who(exc: BaseException) -> str:
    from prover.models.errors import ModelBackendError

    return "model" if isinstance(exc, ModelBackendError) else "search"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
