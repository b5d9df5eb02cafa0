"""The eval loop: sample N completions per problem, store each, verify each distinct text once.

Three kinds of thread meet here. Generator threads call the model backend (one per parallel
generation slot: one locally, one per actor with Ray), the verifier thread streams items through
the verifier's own `check_many` (the Lean pool's workers, a remote server, or the Python task),
and this module's loop, the only writer of the store, turns their events into stored samples
and verdicts. Generation and verification overlap; nothing waits for a whole problem.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from harness.store import RunStore, Sample, StoredRun
from harness.suites import Problem
from harness.tasks import check_item, prompt_problem
from harness.verdict_cache import VerdictCache, text_hash
from prover.errors import MachineryFailure
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import Completion, ModelBackend, SamplingParams
from prover.prompts import PromptFormat


class Verifier(Protocol):
    """The Lean pool's interface (`workers`: how many checks it runs at once, if it says)."""

    def check(self, item: CheckItem) -> Verdict: ...


@dataclass(frozen=True)
class EvalPlan:
    problems: list[Problem]
    n: int  # samples per problem
    prompt_format: PromptFormat
    params: SamplingParams  # its `n` and `seed` are set per call
    seed: int
    checker: str  # the verifier's identity in cache keys (task, Lean version, settings)
    chunk: int = 16  # samples of one prompt per generate call at most
    batch: int = 64  # sequences per generate call (prompts x samples), roughly


@dataclass(frozen=True)
class Unit:
    """Samples `start .. start + count - 1` of one problem, generated in one go."""

    problem: Problem
    start: int
    count: int


@dataclass
class Progress:
    total: int
    generated: int = 0
    verified: int = 0
    accepted: int = 0
    solved: set[str] = field(default_factory=set)
    tokens: int = 0
    generate_s: float = 0.0
    verifier_calls: int = 0
    reused: int = 0  # verdicts from the cache or an identical sample of this run
    expansions: int = 0  # states expanded, in a run of searches (search_run.py)


class EvalError(Exception):
    """The model or the verifier failed; what was stored stays stored."""


def pending_units(plan: EvalPlan, run: StoredRun) -> list[Unit]:
    """The samples not stored yet, as generate-sized units (problem order, index order)."""
    units = []
    for problem in plan.problems:
        missing = [i for i in range(plan.n) if (problem.name, i) not in run.samples]
        while missing:
            start = missing[0]
            count = 1
            while count < plan.chunk and count < len(missing) and missing[count] == start + count:
                count += 1
            units.append(Unit(problem, start, count))
            missing = missing[count:]
    return units


def unit_seed(seed: int, unit: Unit) -> int:
    """The seed of a generate call, from its first unit: reproducible for the same run and
    pending work, and different for every unit of a problem."""
    return (seed * 1_000_003 + zlib.crc32(unit.problem.name.encode()) * 4_099 + unit.start) % (
        2**31
    )


def _calls(plan: EvalPlan, units: list[Unit]) -> Iterator[list[Unit]]:
    """Group units of equal size into generate calls of about `plan.batch` sequences. Two
    units of one problem never share a call: a call has one seed, and a backend that seeds
    each prompt with it (vLLM, a server) would draw the same samples for both."""
    by_count: dict[int, list[Unit]] = {}
    for unit in units:
        group = by_count.setdefault(unit.count, [])
        if any(u.problem.name == unit.problem.name for u in group):
            yield by_count.pop(unit.count)
            group = by_count.setdefault(unit.count, [])
        group.append(unit)
        if len(group) * unit.count >= plan.batch:
            yield by_count.pop(unit.count)
    yield from (group for group in by_count.values() if group)


def run_eval(
    plan: EvalPlan,
    backend: ModelBackend,
    verifier: Verifier,
    store: RunStore,
    run: StoredRun,
    cache: VerdictCache,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    generators: int = 1,
) -> Progress:
    """Fill `run` up to `plan.n` verified samples per problem. Raises EvalError when the model
    or the verifier fails, KeyboardInterrupt on interrupt; stored samples survive either."""
    by_name = {p.name: p for p in plan.problems}
    progress = Progress(total=len(plan.problems) * plan.n)
    for sample in run.samples.values():
        if sample.problem in by_name and sample.index < plan.n:
            progress.generated += 1
            progress.tokens += sample.tokens
            if sample.verified:
                _count(progress, sample)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    to_verify: queue.Queue[CheckItem | None] = queue.Queue()
    waiting: dict[str, list[Sample]] = {}  # text hash -> samples awaiting its verdict
    in_check: dict[int, tuple[CheckItem, str]] = {}  # id(item) -> (item, hash)

    def submit(samples: list[Sample]) -> list[Sample]:
        """Queue the samples' texts for verification; return those already decided."""
        decided = []
        for sample in samples:
            problem = by_name[sample.problem]
            item = check_item(
                problem,
                plan.prompt_format.proof_text(prompt_problem(problem), sample.completion),
            )
            key = text_hash(plan.checker, item)
            sample.text_hash = key
            known = cache.get(key)
            if known is not None:
                sample.accepted, sample.reason, sample.detail = known
                sample.source = "cache"
                decided.append(sample)
            elif key in waiting:
                waiting[key].append(sample)
            else:
                waiting[key] = [sample]
                in_check[id(item)] = (item, key)
                to_verify.put(item)
        return decided

    def generate(calls: queue.Queue[list[Unit] | None]) -> None:
        try:
            while not stop.is_set():
                units = calls.get()
                if units is None:
                    break
                seed = unit_seed(plan.seed, units[0])
                params = replace(plan.params, n=units[0].count, seed=seed)
                prompts = [plan.prompt_format.build(prompt_problem(u.problem)) for u in units]
                started = time.monotonic()
                out = backend.generate(prompts, params)
                events.put(("generated", (units, out, time.monotonic() - started)))
        except BaseException as exc:  # handed to the loop, which stops the run
            events.put(("error", EvalError(f"model failed: {_one_line(exc)}")))
            return
        events.put(("generator done", None))

    def verify() -> None:
        # One check per call, from as many threads as the verifier checks at once: each verdict
        # is stored as soon as it exists (a batching `check_many` would hold finished verdicts
        # back until the next batch fills).
        try:
            while (item := to_verify.get()) is not None:
                events.put(("verdict", (item, verifier.check(item))))
        except MachineryFailure as exc:  # stops the run as it is: never a verdict
            events.put(("error", exc))
        except BaseException as exc:
            events.put(("error", EvalError(f"verifier failed: {_one_line(exc)}")))

    calls: queue.Queue[list[Unit] | None] = queue.Queue()
    units = pending_units(plan, run)
    for call in _calls(plan, units):
        calls.put(call)
    generators = max(1, min(generators, calls.qsize() or 1))
    for _ in range(generators):
        calls.put(None)
    threads = [
        threading.Thread(target=generate, args=(calls,), name=f"generate-{i}", daemon=True)
        for i in range(generators)
    ]
    checkers = max(1, int(getattr(verifier, "workers", 1) or 1))
    threads += [
        threading.Thread(target=verify, name=f"verify-{i}", daemon=True) for i in range(checkers)
    ]
    for thread in threads:
        thread.start()

    def end_feed() -> None:
        for _ in range(checkers):
            to_verify.put(None)

    unverified = [
        s
        for s in run.samples.values()
        if s.problem in by_name and s.index < plan.n and not s.verified
    ]
    decided = submit(unverified)  # stored before a kill, verified now: never regenerated
    run.bytes += _record(store, decided, progress)
    running_generators = generators
    try:
        while progress.verified < progress.total:
            if on_progress is not None:
                on_progress(progress)
            kind, payload = events.get()
            if kind == "error":
                raise payload
            if kind == "generator done":
                running_generators -= 1
                if running_generators == 0 and progress.generated < progress.total:
                    raise EvalError("the model returned fewer completions than asked")
            elif kind == "generated":
                fresh = _samples(*payload, progress)
                run.bytes += store.add_samples(fresh)
                for s in fresh:
                    run.samples[(s.problem, s.index)] = s
                run.bytes += _record(store, submit(fresh), progress)
            elif kind == "verdict":
                item, verdict = payload
                _, key = in_check.pop(id(item))
                samples = waiting.pop(key)
                progress.verifier_calls += 1
                for i, sample in enumerate(samples):
                    sample.accepted = verdict.accepted
                    sample.reason = verdict.reason
                    sample.detail = verdict.detail
                    sample.source = "verifier" if i == 0 else "duplicate"
                    sample.verify_s = verdict.time_s if i == 0 else 0.0
                cache.put(key, verdict.accepted, verdict.reason, verdict.detail)
                run.bytes += _record(store, samples, progress)
        if on_progress is not None:
            on_progress(progress)
    finally:
        stop.set()
        end_feed()
        cache.commit()
    return progress


def _samples(
    units: list[Unit], out: list[list[Completion]], elapsed: float, progress: Progress
) -> list[Sample]:
    if len(out) != len(units) or any(len(c) != u.count for u, c in zip(units, out, strict=False)):
        raise EvalError("the model returned a different number of completions than asked")
    progress.generate_s += elapsed
    fresh = []
    for unit, completions in zip(units, out, strict=True):
        for offset, completion in enumerate(completions):
            fresh.append(
                Sample(
                    unit.problem.name,
                    unit.start + offset,
                    completion.text,
                    completion.tokens,
                    completion.finish_reason,
                )
            )
            progress.tokens += completion.tokens
    progress.generated += len(fresh)
    return fresh


def _record(store: RunStore, samples: list[Sample], progress: Progress) -> int:
    for sample in samples:
        _count(progress, sample)
    return store.add_verdicts(samples)


def _count(progress: Progress, sample: Sample) -> None:
    progress.verified += 1
    if sample.source in ("cache", "duplicate"):
        progress.reused += 1
    if sample.accepted:
        progress.accepted += 1
        progress.solved.add(sample.problem)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
