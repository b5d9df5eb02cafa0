"""The one interface every model backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1  # completions per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 2048
    seed: int | None = None
    # ask for each sample's log-probability (Completion.logprob); off by default: it costs
    # memory in transformers (every step's logits are kept) and reply size with a server
    logprobs: bool = False


@dataclass(frozen=True)
class Prompt:
    """Either a raw text to continue (completion models) or chat messages (chat models)."""

    text: str | None = None
    messages: tuple[dict[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.messages is None):
            raise ValueError("a prompt is either text or messages")


@dataclass(frozen=True)
class Completion:
    """One sample. With `SamplingParams(logprobs=True)`, `logprob` is the sum, over the
    `logprob_tokens` tokens the model generated (an end-of-sequence token that ended the sample
    included, once; padding after it not), of each token's log-probability under the model's own
    next-token distribution: the raw softmax of its logits, before temperature, top-p or any
    other processing. `logprob / logprob_tokens` is the mean per token.

    Why raw: it ranks samples by how likely the model finds them whatever the sampling settings,
    which is what a best-first search over tactics wants; it is what vLLM reports by default
    since its V1 engine (`logprobs_mode="raw_logprobs"`, docs.vllm.ai, vllm/v1/sample/sampler.py)
    and so what BFS-Prover-V2 ranks by (vLLM 0.10, `SamplingParams(temperature=0.7,
    logprobs=1)`, score `cumulative_logprob / len(token_ids)`: its src/search/prover_manager.py),
    as ReProver's vLLM generator (`cumulative_logprob`: its prover/tactic_generator.py).

    `None` (both fields) when not asked for, when an OpenAI-compatible server sends no
    log-probabilities, or with vLLM's old V0 engine at a temperature other than 0 or 1 or with
    top-p below 1: V0 reports the processed distribution, from which the raw one cannot be had."""

    text: str
    tokens: int = 0  # tokens generated
    finish_reason: str | None = None  # "stop", "length", ...
    extra: dict[str, object] = field(default_factory=dict, compare=False)
    logprob: float | None = None  # natural log; see above
    logprob_tokens: int | None = None  # how many tokens `logprob` sums over


class ModelBackend(Protocol):
    """Prompts in, `params.n` sampled completions per prompt out (same order as the prompts)."""

    model: str  # hub name, local directory or served model name
    revision: str | None

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...
