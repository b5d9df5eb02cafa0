"""vLLM in-process on CUDA GPUs: a thin adapter; the mapping functions are pure and testable."""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Sequence
from typing import Any

from prover.models.base import Completion, Prompt, SamplingParams
from prover.models.errors import ModelBackendError


def sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Our sampling parameters as keyword arguments of `vllm.SamplingParams`."""
    kwargs: dict[str, Any] = {
        "n": params.n,
        "temperature": params.temperature,  # vLLM decodes greedily at 0
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
    }
    if params.seed is not None:
        kwargs["seed"] = params.seed
    if params.logprobs:
        # 0: the sampled token's log-probability only. The V1 engine fills
        # `cumulative_logprob` only when `logprobs` is set (vllm/v1/engine/logprobs.py:
        # `cumulative_logprob=(None if num_logprobs is None else 0.0)`); V0 accepts it too.
        kwargs["logprobs"] = 0
    return kwargs


def reports_raw_logprobs(params: SamplingParams, engine_module: str) -> bool:
    """Whether vLLM's log-probabilities are the raw model's (what Completion.logprob promises).

    The V1 engine computes them from the logits before any processing (its default
    `logprobs_mode="raw_logprobs"`, vllm/v1/sample/sampler.py). The V0 engine (the default before
    vLLM 0.8, gone in 0.11) used the processed distribution: the same as raw only when greedy
    (it then samples at temperature 1) or at temperature 1 without top-p."""
    if engine_module.startswith("vllm.v1"):
        return True
    return params.temperature <= 0 or (params.temperature == 1 and params.top_p >= 1)


def to_completions(output: Any, *, logprobs: bool = False) -> list[Completion]:
    """One vLLM `RequestOutput` (its `.outputs`: text, token_ids, finish_reason) as Completions;
    with `logprobs`, each sample's `cumulative_logprob` over its `token_ids`, which hold the
    eos token that ended it (vLLM's text leaves it out)."""
    samples = sorted(output.outputs, key=lambda o: getattr(o, "index", 0))
    out = []
    for sample in samples:
        extra: dict[str, object] = {}
        stop_reason = getattr(sample, "stop_reason", None)
        if stop_reason is not None:
            extra["stop_reason"] = stop_reason  # the stop string or token that ended it
        logprob = sample_logprob(sample) if logprobs else None
        out.append(
            Completion(
                sample.text,
                tokens=len(sample.token_ids),
                finish_reason=sample.finish_reason,
                extra=extra,
                logprob=logprob,
                logprob_tokens=len(sample.token_ids) if logprob is not None else None,
            )
        )
    return out


def sample_logprob(sample: Any) -> float | None:
    """`cumulative_logprob`, else the sum of the per-token `logprobs` (a list, one dict per token
    from token id to an object with `.logprob`), else None."""
    total = getattr(sample, "cumulative_logprob", None)
    if total is not None:
        return float(total)
    steps = getattr(sample, "logprobs", None)
    if not steps or len(steps) != len(sample.token_ids):
        return None
    try:
        return math.fsum(
            step[token].logprob for step, token in zip(steps, sample.token_ids, strict=True)
        )
    except (KeyError, TypeError, AttributeError):
        return None


def split_prompts(prompts: Sequence[Prompt]) -> tuple[list[int], list[int]]:
    """Positions of the text prompts and of the chat prompts (vLLM takes them in two calls)."""
    texts = [i for i, p in enumerate(prompts) if p.messages is None]
    chats = [i for i, p in enumerate(prompts) if p.messages is not None]
    return texts, chats


def _version(vllm: Any) -> tuple[int, ...]:
    parts = []
    for part in str(getattr(vllm, "__version__", "0")).split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


class VLLMBackend:
    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
    ) -> None:
        try:
            import vllm
        except ImportError:
            raise ModelBackendError(
                "vLLM is not installed: pip install 'prover[gpu]' on a machine with a CUDA GPU"
            ) from None
        self.model = model
        self.revision = revision
        self._vllm = vllm
        self._llm: Any = vllm.LLM(
            model=model,
            revision=revision,
            dtype=dtype or "auto",
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
        )
        self._warned_processed = False

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if self._llm is None:
            raise ModelBackendError(f"model {self.model!r} was closed")
        sampling = self._vllm.SamplingParams(**sampling_kwargs(params))
        logprobs = params.logprobs and self._raw_logprobs(params)
        texts, chats = split_prompts(prompts)
        out: list[list[Completion]] = [[] for _ in prompts]
        if texts:
            batch = [prompts[i].text for i in texts]
            results = self._llm.generate(batch, sampling, use_tqdm=False)
            for i, result in zip(texts, results, strict=True):
                out[i] = to_completions(result, logprobs=logprobs)
        if chats:
            # LLM.chat applies the tokenizer's chat template with add_generation_prompt=True
            batch = [list(prompts[i].messages or ()) for i in chats]
            results = self._llm.chat(batch, sampling, use_tqdm=False)
            for i, result in zip(chats, results, strict=True):
                out[i] = to_completions(result, logprobs=logprobs)
        return out

    def _raw_logprobs(self, params: SamplingParams) -> bool:
        engine = getattr(self._llm, "llm_engine", None)
        if engine is not None:
            module = type(engine).__module__
        else:  # no engine to look at: vLLM 0.11 removed V0
            module = "vllm.v1" if _version(self._vllm) >= (0, 11) else "unknown"
        if reports_raw_logprobs(params, module):
            return True
        if not self._warned_processed:
            self._warned_processed = True
            print(
                "prover: warning: vLLM's V0 engine reports the log-probabilities of the "
                "processed distribution (temperature, top-p), not the model's: samples come "
                "without one; use vLLM 0.8 or later (V1 engine) for them",
                file=sys.stderr,
            )
        return False

    def close(self) -> None:
        self._llm = None
        gc.collect()
