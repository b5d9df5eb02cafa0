"""The eval loop itself (harness.runner): call grouping, failures that must stop a run rather
than hang it, and the store's guards. The instant doubles here are named as such."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from harness.runner import EvalError, EvalPlan, _calls, pending_units, run_eval
from harness.store import RunStore, Sample, StoredRun, StoreError
from harness.suites import Problem
from harness.verdict_cache import CacheError, VerdictCache
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import Completion, Prompt, SamplingParams
from prover.prompts import get_format

FMT = get_format("deepseek-v1.5")


def problems(count: int) -> list[Problem]:
    return [
        Problem(f"p{i}", "test", "import Mathlib\n", f"theorem p{i} : True := by\n")
        for i in range(count)
    ]


class InstantModel:
    """Test double of a model backend: distinct completions, at once; records each call."""

    model = "instant"
    revision = None

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append((len(prompts), params.seed))
        return [
            [Completion(f"  trivial -- {len(self.calls)} {p} {i}\n```", 1) for i in range(params.n)]
            for p in range(len(prompts))
        ]

    def close(self) -> None:
        pass


class InstantVerifier:
    """Test double of the Lean pool: accepts everything at once."""

    workers = 2

    def check(self, item: CheckItem) -> Verdict:
        return Verdict(item.name, True, "ok")


def plan(count: int, n: int, **kw) -> EvalPlan:
    return EvalPlan(problems(count), n, FMT, SamplingParams(), seed=0, checker="t", **kw)


def test_units_of_one_problem_never_share_a_call() -> None:
    p = plan(3, 40, chunk=16, batch=64)
    units = pending_units(p, StoredRun({}))
    assert [(u.problem.name, u.start, u.count) for u in units][:3] == [
        ("p0", 0, 16), ("p0", 16, 16), ("p0", 32, 8),
    ]  # fmt: skip
    for call in _calls(p, units):
        names = [u.problem.name for u in call]
        assert len(names) == len(set(names))
        assert len({u.count for u in call}) == 1
    assert sum(u.count for call in _calls(p, units) for u in call) == 3 * 40


def test_a_full_run_and_its_seeds(tmp_path) -> None:
    model = InstantModel()
    with RunStore(tmp_path) as store:
        run = store.create({"n": 40})
        progress = run_eval(plan(3, 40), model, InstantVerifier(), store, run, VerdictCache())
    assert progress.verified == progress.accepted == 120
    seeds = [seed for _, seed in model.calls]
    assert len(seeds) == len(set(seeds))  # every call its own seed


class FailingFormat:
    """A prompt format whose build fails: the run must stop with EvalError, not hang."""

    name = "failing"

    def build(self, problem):
        raise RuntimeError("cannot build this prompt")

    def proof_text(self, problem, completion):
        return completion


def test_a_failure_outside_the_model_call_stops_the_run(tmp_path) -> None:
    p = EvalPlan(problems(2), 2, FailingFormat(), SamplingParams(), seed=0, checker="t")
    outcome: list[BaseException] = []

    def go() -> None:
        with RunStore(tmp_path) as store:
            run = store.create({"n": 2})
            try:
                run_eval(p, InstantModel(), InstantVerifier(), store, run, VerdictCache())
            except BaseException as exc:
                outcome.append(exc)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the run hung"
    assert isinstance(outcome[0], EvalError) and "cannot build this prompt" in str(outcome[0])


def test_a_second_writer_is_refused(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create({"n": 1})
        with pytest.raises(StoreError, match="in use by another"):
            RunStore(tmp_path).resume({"n": 1}, keys=["n"])
    with RunStore(tmp_path) as again:  # released on close
        again.resume({"n": 1}, keys=["n"])


def test_zeros_after_the_last_line_are_a_torn_tail(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create({"n": 1})
        store.add_samples([Sample("p", 0, "a")])
    path = tmp_path / "samples.jsonl"
    path.write_bytes(path.read_bytes() + b"\0" * 4096)
    with RunStore(tmp_path) as store:
        run = store.resume({"n": 1}, keys=["n"])
    assert set(run.samples) == {("p", 0)}


def test_a_lone_surrogate_from_a_model_is_stored_and_read_back(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create({"n": 1})
        store.add_samples([Sample("p", 0, "bad \ud83d text")])
    with RunStore(tmp_path) as store:
        run = store.resume({"n": 1}, keys=["n"])
    assert run.samples[("p", 0)].completion == "bad \ud83d text"


def test_an_unusable_cache_is_a_one_line_error(tmp_path) -> None:
    (tmp_path / "verdicts.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="cannot use it"):
        VerdictCache(tmp_path)
