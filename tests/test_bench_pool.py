"""The benchmark scripts run and print their figures (the numbers go in the issue notes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def run_script(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return result.stdout


def test_bench_pool_prints_its_figures() -> None:
    out = run_script("bench_pool.py", "--checks", "400", "--recycle-after", "100")
    overhead = float(re.search(r"own overhead per check: ([\d.]+) ms", out).group(1))
    per_1000 = float(re.search(r"\(([\d.]+) per 1,000 proofs", out).group(1))
    assert re.search(r"pool: [\d,]+ checks/s", out)
    assert overhead < 20  # loose here (a busy CI box); the script's own runs are quoted
    # 400 checks, a process retires after 100: 4 processes, or 5 when two end part-used
    assert per_1000 in (4 * 1000 / 400, 5 * 1000 / 400)


def test_bench_serve_prints_its_figures() -> None:
    out = run_script("bench_serve.py", "--requests", "100", "--clients", "5")
    assert re.search(r"serve: [\d,]+ requests/s \([\d.]+x baseline\), p50 [\d.]+ ms", out)


def test_bench_prove_prints_its_figures() -> None:
    out = run_script("bench_prove.py", "--theorems", "5", "--attempts", "4")
    assert re.search(r"prove-loop overhead per attempt: -?[\d.]+ ms", out)


def test_bench_eval_prints_its_figures() -> None:
    out = run_script("bench_eval.py", "--problems", "20", "--n", "8")
    overhead = float(re.search(r"harness overhead per sample: (-?[\d.]+) ms", out).group(1))
    assert overhead < 20  # loose here (a busy CI box); the script's own runs are quoted
    assert re.search(r"store: \d+ bytes per sample", out)


def test_bench_replay_prints_its_figures() -> None:
    out = run_script("bench_replay.py", "--checks", "100")
    assert re.search(r"replay on:  [\d.]+ ms per proof \([\d.]+x\)", out)
    assert re.search(r"Python-side overhead: -?[\d.]+ ms per accepted proof", out)
