"""The pool benchmark script runs and prints its figures (the numbers go in the issue notes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_pool.py"


def test_bench_pool_prints_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--checks", "400", "--recycle-after", "100"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = result.stdout
    overhead = float(re.search(r"own overhead per check: ([\d.]+) ms", out).group(1))
    per_1000 = float(re.search(r"\(([\d.]+) per 1,000 proofs", out).group(1))
    assert re.search(r"pool: [\d,]+ checks/s", out)
    assert overhead < 20  # loose here (a busy CI box); the script's own runs are quoted
    # 400 checks, a process retires after 100: 4 processes, or 5 when two end part-used
    assert per_1000 in (4 * 1000 / 400, 5 * 1000 / 400)


def test_bench_serve_prints_its_figures() -> None:
    script = SCRIPT.parent / "bench_serve.py"
    result = subprocess.run(
        [sys.executable, str(script), "--requests", "100", "--clients", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert re.search(r"serve: [\d,]+ requests/s \([\d.]+x baseline\), p50 [\d.]+ ms", result.stdout)


def test_bench_prove_prints_its_figures() -> None:
    script = SCRIPT.parent / "bench_prove.py"
    result = subprocess.run(
        [sys.executable, str(script), "--theorems", "5", "--attempts", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert re.search(r"prove-loop overhead per attempt: -?[\d.]+ ms", result.stdout)
