#!/usr/bin/env python3
"""`prover serve` throughput and latency with an instant REPL test double.

Clients post one-snippet `/api/check` requests from C threads; prints requests/s and p50/p99
latency, against a baseline measured in the same run: the same snippets run straight on the
pool (no HTTP), so the ratio is the price of the server.

    python scripts/bench_serve.py [--requests 2000] [--clients 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from prover.lean.pool import ReplPool, VerifierConfig  # noqa: E402
from prover.lean.sandbox import ReplCommand, SandboxConfig, transport_factory  # noqa: E402
from prover.server.app import run_snippet  # noqa: E402

from serving import running_server  # noqa: E402

INSTANT = ROOT / "tests" / "doubles" / "instant_repl.py"
CODE = "import Mathlib\n\ntheorem t : (1 : ℕ) = 1 := by\n  rfl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    factory = transport_factory(
        "none", ReplCommand((sys.executable, str(INSTANT))), SandboxConfig("none", 4096)
    )

    def pool() -> ReplPool:
        config = VerifierConfig(workers=args.workers, timeout=60, recycle_after=10**9, replay=False)
        return ReplPool(config, transport_factory=factory)

    with pool() as direct, ThreadPoolExecutor(args.workers) as executor:
        start = time.perf_counter()
        list(executor.map(lambda _: run_snippet(direct, CODE, 60), range(args.requests)))
        direct_rate = args.requests / (time.perf_counter() - start)

    latencies: list[float] = []
    with running_server(pool, max_queue=10**6) as url:
        clients = [httpx.Client(timeout=60) for _ in range(args.clients)]

        def one(i: int) -> None:
            t0 = time.perf_counter()
            reply = clients[i % args.clients].post(
                url + "/api/check", json={"snippets": [{"id": str(i), "code": CODE}]}
            )
            reply.raise_for_status()
            latencies.append(time.perf_counter() - t0)

        with ThreadPoolExecutor(args.clients) as pool_threads:
            start = time.perf_counter()
            list(pool_threads.map(one, range(args.requests)))
            wall = time.perf_counter() - start
        for client in clients:
            client.close()
    quantiles = statistics.quantiles(latencies, n=100)
    rate = args.requests / wall
    print(f"requests: {args.requests}, clients: {args.clients}, workers: {args.workers}")
    print(f"baseline (same snippets on the pool, no HTTP): {direct_rate:,.0f} snippets/s")
    print(
        f"serve: {rate:,.0f} requests/s ({rate / direct_rate:.2f}x baseline), "
        f"p50 {quantiles[49] * 1e3:.1f} ms, p99 {quantiles[98] * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
