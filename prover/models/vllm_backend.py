"""vLLM in-process on CUDA GPUs: a thin adapter; the mapping functions are pure and testable."""

from __future__ import annotations

import gc
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
    return kwargs


def to_completions(output: Any) -> list[Completion]:
    """One vLLM `RequestOutput` (its `.outputs`: text, token_ids, finish_reason) as Completions."""
    samples = sorted(output.outputs, key=lambda o: getattr(o, "index", 0))
    out = []
    for sample in samples:
        extra: dict[str, object] = {}
        stop_reason = getattr(sample, "stop_reason", None)
        if stop_reason is not None:
            extra["stop_reason"] = stop_reason  # the stop string or token that ended it
        out.append(
            Completion(
                sample.text,
                tokens=len(sample.token_ids),
                finish_reason=sample.finish_reason,
                extra=extra,
            )
        )
    return out


def split_prompts(prompts: Sequence[Prompt]) -> tuple[list[int], list[int]]:
    """Positions of the text prompts and of the chat prompts (vLLM takes them in two calls)."""
    texts = [i for i, p in enumerate(prompts) if p.messages is None]
    chats = [i for i, p in enumerate(prompts) if p.messages is not None]
    return texts, chats


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

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if self._llm is None:
            raise ModelBackendError(f"model {self.model!r} was closed")
        sampling = self._vllm.SamplingParams(**sampling_kwargs(params))
        texts, chats = split_prompts(prompts)
        out: list[list[Completion]] = [[] for _ in prompts]
        if texts:
            batch = [prompts[i].text for i in texts]
            results = self._llm.generate(batch, sampling, use_tqdm=False)
            for i, result in zip(texts, results, strict=True):
                out[i] = to_completions(result)
        if chats:
            # LLM.chat applies the tokenizer's chat template with add_generation_prompt=True
            batch = [list(prompts[i].messages or ()) for i in chats]
            results = self._llm.chat(batch, sampling, use_tqdm=False)
            for i, result in zip(chats, results, strict=True):
                out[i] = to_completions(result)
        return out

    def close(self) -> None:
        self._llm = None
        gc.collect()
