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
    text: str
    tokens: int = 0  # tokens generated
    finish_reason: str | None = None  # "stop", "length", ...
    extra: dict[str, object] = field(default_factory=dict, compare=False)


class ModelBackend(Protocol):
    """Prompts in, `params.n` sampled completions per prompt out (same order as the prompts)."""

    model: str  # hub name, local directory or served model name
    revision: str | None

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...
