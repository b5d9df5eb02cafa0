#!/usr/bin/env python3
"""The best-first search's own overhead per expansion, against instant test doubles (the
instant REPL double in tactic mode, where every tactic opens a new state, and an instant
step-level model double that proposes K distinct tactics with log-probabilities).

Baseline (same run): a bare tactic round trip through the pool (`TacticSession.run` on a
pinned process: the scan, the heartbeat wrapper, the request and its answer). Search: one
best-first search of N expansions of K tactics each, no proof to find. The search's own
overhead per expansion = its time per expansion minus the time spent in `TacticSession.run`
(prompt, sampling call, dedupe, queue, merging), printed as a ratio to one bare round trip.
Then expansions per second with 1 worker (one search) and with 2 workers (2 searches in
parallel on a 2-worker pool, one thread each).

    python scripts/bench_search.py [--expansions 500] [--tactics-per-state 8]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.lean.pool import ReplPool, VerifierConfig  # noqa: E402
from prover.lean.sandbox import ReplCommand, SandboxConfig, transport_factory  # noqa: E402
from prover.models.base import Completion, Prompt, SamplingParams  # noqa: E402
from prover.prove.search import (  # noqa: E402
    SearchConfig,
    SearchProblem,
    best_first_search,
    search_seed,
)
from prover.step_prompts import get_step_format  # noqa: E402

INSTANT = ROOT / "tests" / "doubles" / "instant_repl.py"
HEADER = "import Mathlib\nset_option maxHeartbeats 400000\nopen Real Nat\n"
PROBLEM = SearchProblem("t", HEADER, "theorem t (a b : ℕ) (h : a = b) : b = a := by")


class InstantStepModel:
    """A test double of a step-level model backend: K distinct tactics at once, each with a
    log-probability, whatever the state."""

    model = "instant-bfs-prover"
    revision = None

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return [
            [
                Completion(
                    f"nlinarith [sq_nonneg (a - b), h, t{i}]", 12, "stop", logprob=-0.1 * (i + 1)
                )
                for i in range(params.n)
            ]
            for _ in prompts
        ]

    def close(self) -> None:
        pass


class TimedPool:
    """The pool as a search sees it, timing the search's calls of `TacticSession.run`."""

    def __init__(self, pool: ReplPool) -> None:
        self.pool = pool
        self.in_tactics = 0.0  # seconds inside `TacticSession.run`
        self.tactics = 0

    @contextlib.contextmanager
    def tactic_session(self, header: str, formal_statement: str, *, context: str = ""):
        with self.pool.tactic_session(header, formal_statement, context=context) as session:
            run = session.run

            def timed(*args, **kwargs):
                began = time.perf_counter()
                try:
                    return run(*args, **kwargs)
                finally:
                    self.in_tactics += time.perf_counter() - began
                    self.tactics += 1

            session.run = timed  # type: ignore[method-assign]
            yield session

    def check(self, item):
        return self.pool.check(item)


def pool(factory, workers: int) -> ReplPool:
    config = VerifierConfig(workers=workers, timeout=60, replay=False, recycle_after=10**9)
    return ReplPool(config, transport_factory=factory)


def round_trip(factory, n: int) -> float:
    """Seconds per bare tactic round trip through the pool."""
    with pool(factory, 1) as p, p.tactic_session(PROBLEM.header, PROBLEM.formal_statement) as s:
        for _ in range(50):  # warm up
            s.run(s.root, "nlinarith [sq_nonneg (a - b), h]")
        start = time.perf_counter()
        for _ in range(n):
            s.run(s.root, "nlinarith [sq_nonneg (a - b), h]")
        return (time.perf_counter() - start) / n


def searches(factory, workers: int, expansions: int, k: int) -> tuple[float, int, float, int]:
    """(wall seconds, expansions done, seconds in `TacticSession.run`, tactics run) for
    `workers` searches in parallel on `workers` pool workers, each of `expansions` expansions
    (the processes' start excluded)."""
    config = SearchConfig(expansions=expansions, tactics_per_state=k, time_s=None, seed=0)
    model = InstantStepModel()
    fmt = get_step_format("bfs-prover")
    done: list[int] = []
    with pool(factory, workers) as p:
        with contextlib.ExitStack() as started:  # the processes start first: not timed
            for _ in range(workers):
                started.enter_context(p.tactic_session(PROBLEM.header, PROBLEM.formal_statement))
        timed = [TimedPool(p) for _ in range(workers)]

        def one(index: int) -> None:
            seeded = dataclasses.replace(config, seed=search_seed(config.seed, index))
            result = best_first_search(
                PROBLEM, backend=model, step_format=fmt, verifier=timed[index], config=seeded
            )
            assert result.stopped == "expansions", result
            done.append(result.expansions)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(workers)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    assert len(done) == workers, "a search failed"
    return wall, sum(done), sum(t.in_tactics for t in timed), sum(t.tactics for t in timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expansions", type=int, default=500)
    parser.add_argument("--tactics-per-state", type=int, default=8)
    args = parser.parse_args()
    command = ReplCommand((sys.executable, str(INSTANT)))
    factory = transport_factory("none", command, SandboxConfig("none", 4096))
    k = args.tactics_per_state

    trip = round_trip(factory, max(200, args.expansions * k // 4))
    wall_1, done_1, in_tactics, tactics = searches(factory, 1, args.expansions, k)
    per_expansion = wall_1 / done_1
    overhead = (wall_1 - in_tactics) / done_1
    wall_2, done_2, _, _ = searches(factory, 2, args.expansions, k)
    print(f"expansions: {args.expansions} per search, tactics per state: {k}")
    print(f"bare tactic round trip through the pool: {trip * 1e3:.3f} ms")
    print(
        f"search: {per_expansion * 1e3:.3f} ms per expansion, of which {tactics / done_1:.1f} "
        f"tactics at {in_tactics / tactics * 1e3:.3f} ms each (deeper states than the bare one)"
    )
    print(
        f"search's own overhead per expansion: {overhead * 1e3:.3f} ms "
        f"({overhead / trip:.2f}x a bare tactic round trip)"
    )
    print(f"1 worker: {done_1 / wall_1:,.1f} expansions/s (one search)")
    print(
        f"2 workers: {done_2 / wall_2:,.1f} expansions/s (2 searches in parallel, "
        f"{(done_2 / wall_2) / (done_1 / wall_1):.2f}x 1 worker)"
    )


if __name__ == "__main__":
    main()
