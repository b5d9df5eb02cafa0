#!/usr/bin/env python3
"""Prove-loop overhead per attempt: everything but model and Lean time.

Instant test doubles stand in for both (a scripted model, the InstantRepl), so what is
measured is the loop itself: finding targets, prompts, extraction, planning, pooling and
writing back. Baseline in the same run: the same candidates checked straight on the pool.

    python scripts/bench_prove.py [--theorems 50] [--attempts 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from prover.lean.pool import ReplPool, VerifierConfig  # noqa: E402
from prover.lean.sandbox import ReplCommand, SandboxConfig, transport_factory  # noqa: E402
from prover.lean.verdict import CheckItem  # noqa: E402
from prover.prompts import get_format  # noqa: E402
from prover.prove.loop import prove_text  # noqa: E402

from doubles.scripted_model import ScriptedModel  # noqa: E402

INSTANT = ROOT / "tests" / "doubles" / "instant_repl.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--theorems", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    factory = transport_factory(
        "none", ReplCommand((sys.executable, str(INSTANT))), SandboxConfig("none", 4096)
    )
    names = [f"t{i}" for i in range(args.theorems)]
    text = "import Mathlib\n\n" + "".join(
        f"theorem {n} (a b : ℕ) (h : a = b) : b = a := by\n  sorry\n\n" for n in names
    )
    # the InstantRepl accepts everything: every attempt of a round is checked, one round each
    proof = "  nlinarith [sq_nonneg (a - b), h]\n  exact h.symm\n```"
    config = VerifierConfig(workers=args.workers, timeout=60, recycle_after=10**9, replay=False)

    with ReplPool(config, transport_factory=factory) as pool:
        items = [
            CheckItem(
                n,
                "import Mathlib\n",
                f"theorem {n} (a b : ℕ) (h : a = b) : b = a := by",
                proof.removesuffix("```"),
            )
            for n in names
            for _ in range(args.attempts)
        ]
        start = time.perf_counter()
        for _ in pool.check_many(items):
            pass
        direct = (time.perf_counter() - start) / len(items)

    model = ScriptedModel({n: [proof] for n in names})
    with ReplPool(config, transport_factory=factory) as pool:
        start = time.perf_counter()
        report = prove_text(
            text,
            backend=model,
            prompt_format=get_format("deepseek-v1.5"),
            verifier=pool,
            attempts=args.attempts,
            rounds=1,
        )
        wall = time.perf_counter() - start
    attempts = sum(r.attempts for r in report.results)
    checked = sum(sum(r.reasons.values()) for r in report.results)
    assert report.all_proved
    per_attempt = wall / attempts
    print(
        f"theorems: {args.theorems}, attempts per round: {args.attempts}, workers: {args.workers}"
    )
    print(
        f"baseline (the same candidates checked straight on the pool): "
        f"{direct * 1e3:.3f} ms per check"
    )
    print(
        f"prove loop: {per_attempt * 1e3:.3f} ms per attempt sampled ({checked} of "
        f"{attempts} checked before the first accept), {per_attempt / direct:.2f}x baseline"
    )
    overhead = per_attempt - direct * checked / attempts
    print(f"prove-loop overhead per attempt: {overhead * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
