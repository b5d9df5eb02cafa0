#!/usr/bin/env python3
"""The kernel replay rung's Python-side overhead per accepted proof, against an instant REPL
test double (it answers at once, so only our side is measured: the pickle request, moving the
file between the two processes' exchange dirs, the replay process's four requests, judging).

The same N accepted proofs go through `ReplPool.check_many` with replay off, then on; printed:
wall time per proof for each, their ratio, and the difference per accepted proof. With real
Lean the replay's cost is dominated by the replay process importing the header's modules again.

    python scripts/bench_replay.py [--checks 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.lean.pool import ReplPool, VerifierConfig  # noqa: E402
from prover.lean.replay import REPLAY_RECYCLE_MAX  # noqa: E402
from prover.lean.sandbox import ReplCommand, SandboxConfig, transport_factory  # noqa: E402
from prover.lean.verdict import CheckItem  # noqa: E402

INSTANT = ROOT / "tests" / "doubles" / "instant_repl.py"
HEADER = "import Mathlib\nset_option maxHeartbeats 400000\nopen Real Nat\n"


def items(n: int) -> list[CheckItem]:
    return [
        CheckItem(
            f"t{i}",
            HEADER,
            f"theorem t{i} (a b : ℕ) (h : a = b) : b = a := by\n",
            "  exact h.symm",
        )
        for i in range(n)
    ]


def run(factory, n: int, workers: int, replay: bool) -> tuple[float, int, int]:
    """Wall seconds per proof, how many were replayed, replay processes started."""
    config = VerifierConfig(workers=workers, recycle_after=10**9, timeout=60, replay=replay)
    with ReplPool(config, transport_factory=factory) as pool:
        pool.check(items(1)[0])  # processes started before the clock
        start = time.perf_counter()
        verdicts = [v for _, v in pool.check_many(items(n))]
        wall = time.perf_counter() - start
    assert all(v.accepted for v in verdicts), "the instant double accepts everything"
    return wall / n, sum(v.replayed for v in verdicts), pool.stats.replay_processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    command = ReplCommand((sys.executable, str(INSTANT)))
    factory = transport_factory("none", command, SandboxConfig("none", 4096))
    off, _, _ = run(factory, args.checks, args.workers, replay=False)
    on, replayed, started = run(factory, args.checks, args.workers, replay=True)
    assert replayed == args.checks, f"only {replayed} of {args.checks} replayed"
    print(f"accepted proofs: {args.checks}, workers: {args.workers}")
    print(f"replay off: {off * 1e3:.3f} ms per proof")
    print(f"replay on:  {on * 1e3:.3f} ms per proof ({on / off:.2f}x)")
    print(f"replay rung's Python-side overhead: {(on - off) * 1e3:.3f} ms per accepted proof")
    print(
        f"replay processes started: {started} (one retires after {REPLAY_RECYCLE_MAX} replays: "
        "each unpickle imports the modules again and the REPL frees nothing)"
    )


if __name__ == "__main__":
    main()
