#!/usr/bin/env python3
"""The REPL pool's own overhead per check, against an instant REPL test double.

Baseline (same run): the same two requests per check (the proof, then the final statement and
axioms check) sent straight through one `LeanRepl`, no pool. Pool: `ReplPool.check_many` on W
workers. The pool's overhead per check = worker-time per check in the pool minus the baseline's
time per check.

    python scripts/bench_pool.py [--checks 10000] [--workers 2] [--recycle-after 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.lean.commands import statement_check_command  # noqa: E402
from prover.lean.pool import ReplPool, VerifierConfig  # noqa: E402
from prover.lean.repl import LeanRepl  # noqa: E402
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
            "  nlinarith [sq_nonneg (a - b), h]\n  exact h.symm",
        )
        for i in range(n)
    ]


def baseline(factory, n: int) -> float:
    """Seconds per check for the raw round trips through one process."""
    repl = LeanRepl(factory(), HEADER)
    code = "theorem t (a b : ℕ) (h : a = b) : b = a := by\n  exact h.symm"
    final = statement_check_command("t", "ref")
    start = time.perf_counter()
    for _ in range(n):
        response = repl.command(code, env=repl.header_env, timeout=30)
        repl.command(final, env=response.env, timeout=30)
    elapsed = time.perf_counter() - start
    repl.close()
    return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recycle-after", type=int, default=1000)
    args = parser.parse_args()
    command = ReplCommand((sys.executable, str(INSTANT)))
    factory = transport_factory("none", command, SandboxConfig("none", 4096))

    raw = baseline(factory, min(args.checks, 3000))
    # the replay rung has its own figure (bench_replay.py): this one is the checking path
    config = VerifierConfig(
        workers=args.workers, recycle_after=args.recycle_after, timeout=60, replay=False
    )
    with ReplPool(config, transport_factory=factory) as pool:
        start = time.perf_counter()
        verdicts = [v for _, v in pool.check_many(items(args.checks))]
        wall = time.perf_counter() - start
        stats = pool.stats
    assert all(v.accepted for v in verdicts), "the instant double accepts everything"
    per_check_worker = wall * args.workers / args.checks
    overhead = per_check_worker - raw
    print(f"checks: {args.checks}, workers: {args.workers}, recycle after: {args.recycle_after}")
    print(f"baseline (raw round trips, no pool): {raw * 1e3:.3f} ms per check")
    print(
        f"pool: {args.checks / wall:,.0f} checks/s, {per_check_worker * 1e3:.3f} ms "
        f"worker-time per check ({per_check_worker / raw:.2f}x baseline)"
    )
    print(f"pool's own overhead per check: {overhead * 1e3:.3f} ms")
    print(
        f"header elaborations: {stats.header_elaborations} "
        f"({stats.header_elaborations * 1000 / args.checks:.2f} per 1,000 proofs; "
        f"recycles {stats.recycles}, restarts {stats.restarts})"
    )


if __name__ == "__main__":
    main()
