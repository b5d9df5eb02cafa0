#!/usr/bin/env python3
"""Eval-harness overhead per sample: everything but model and Lean time, and store bytes.

Instant test doubles stand in for the model (every sample a distinct completion, so nothing
is deduplicated away) and for the verifier (it accepts every third proof at once). What is
measured is the harness itself: units and prompts, the durable store with its fsyncs, hashing
and the verdict cache, the threads, the progress callback, results.json with 10,000-resample
intervals and accepted.jsonl. Baseline in the same run: the same doubles called straight in
a loop (generate, then check), with no harness.

    python scripts/bench_eval.py [--problems 500] [--n 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.metrics import default_ks  # noqa: E402
from harness.results import write_results  # noqa: E402
from harness.runner import EvalPlan, run_eval  # noqa: E402
from harness.store import RunStore  # noqa: E402
from harness.suites import Problem  # noqa: E402
from harness.tasks import check_item, prompt_problem  # noqa: E402
from harness.verdict_cache import VerdictCache  # noqa: E402
from prover.lean.verdict import CheckItem, Verdict  # noqa: E402
from prover.models.base import Completion, Prompt, SamplingParams  # noqa: E402
from prover.prompts import get_format  # noqa: E402


class InstantModel:
    """Test double: a distinct completion per sample, at once."""

    model = "instant"
    revision = None

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.calls += 1
        return [
            [Completion(f"  simp -- {self.calls} {p} {i}\n```", 8, "stop") for i in range(params.n)]
            for p in range(len(prompts))
        ]

    def close(self) -> None:
        pass


class InstantVerifier:
    """Test double of the Lean pool: accepts every third proof, at once."""

    def check(self, item: CheckItem) -> Verdict:
        ok = hash(item.proof) % 3 == 0
        return Verdict(item.name, ok, "ok" if ok else "error")

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        for item in items:
            yield item, self.check(item)


def problems(count: int) -> list[Problem]:
    header = "import Mathlib\n\nopen Real\n"
    return [
        Problem(f"p{i}", "test", header, f"theorem p{i} (x : ℝ) (h : 0 < x) : 0 < x ^ 2 := by\n")
        for i in range(count)
    ]


def baseline(plist: list[Problem], n: int) -> float:
    fmt = get_format("deepseek-v1.5")
    model, verifier = InstantModel(), InstantVerifier()
    start = time.perf_counter()
    for p in plist:
        for chunk in range(0, n, 16):
            params = SamplingParams(n=min(16, n - chunk))
            out = model.generate([fmt.build(prompt_problem(p))], params)
            items = [check_item(p, fmt.proof_text(prompt_problem(p), c.text)) for c in out[0]]
            for _ in verifier.check_many(items):
                pass
    return time.perf_counter() - start


def harness(plist: list[Problem], n: int) -> tuple[float, float]:
    fmt = get_format("deepseek-v1.5")
    plan = EvalPlan(plist, n, fmt, SamplingParams(), seed=0, checker="bench")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        start = time.perf_counter()
        with RunStore(run_dir) as store:
            run = store.create({"suite": "bench", "n": n})
            cache = VerdictCache(run_dir / "cache")
            loop = run_eval(plan, InstantModel(), InstantVerifier(), store, run, cache,
                            on_progress=lambda p: None)  # fmt: skip
            cache.close()
        write_results(
            run_dir, suite="bench", split="test", n=n, ks=default_ks(n), problems=plist,
            run=run, proof_of=lambda p, c: fmt.proof_text(prompt_problem(p), c),
            provenance={}, timings={},
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        assert loop.verified == len(plist) * n
        return elapsed, (run_dir / "samples.jsonl").stat().st_size / (len(plist) * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    plist = problems(args.problems)
    samples = args.problems * args.n
    bare = baseline(plist, args.n)
    wall, per_sample_bytes = harness(plist, args.n)
    overhead_ms = (wall - bare) / samples * 1000
    print(f"{args.problems} problems x {args.n} samples = {samples:,} samples")
    print(f"baseline (doubles called in a loop): {bare / samples * 1000:.3f} ms per sample")
    print(f"harness: {wall:.2f} s, {wall / samples * 1000:.3f} ms per sample "
          f"({wall / bare:.1f}x baseline)")  # fmt: skip
    print(f"harness overhead per sample: {overhead_ms:.3f} ms (target < 2 ms)")
    print(f"store: {per_sample_bytes:.0f} bytes per sample (sample + verdict lines)")


if __name__ == "__main__":
    main()
