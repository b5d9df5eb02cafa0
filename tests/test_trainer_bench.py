"""scripts/bench_train_step.py runs (tiny settings) and prints its figures."""

from __future__ import annotations

import re

import pytest
from test_bench_pool import run_script

pytest.importorskip("trl")


@pytest.mark.slow
def test_bench_train_step_prints_seconds_per_step_and_the_ratio() -> None:
    out = run_script(
        "bench_train_step.py",
        *"--steps 1 --rounds 1 --hidden 32 --layers 1 --completion-length 8".split(),
        *"--prompts 2 --generations 2".split(),
    )
    for method in ("alpha-DPG", r"GRPO beta=0", r"GRPO beta=0\.04"):
        assert re.search(rf"^{method}: [\d.]+ s/step \(median of 1;", out, re.M), method
    ratio = re.search(r"alpha-DPG / GRPO\(beta=0\): ([\d.]+)x", out)
    assert ratio and float(ratio.group(1)) > 0
