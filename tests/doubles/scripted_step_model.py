"""ScriptedStepModel: a test double of a step-level model backend (no model can be sampled
meaningfully here), driven through the same `ModelBackend` interface. Its script maps a piece
of a state's goal text to the tactics proposed there, each with its log-probability; a prompt
gets the tactics of the longest key it contains, in script order, repeated to fill `params.n`
samples, each with `Completion.logprob` set when `params.logprobs` asks for it."""

from __future__ import annotations

from collections.abc import Sequence

from prover.models.base import Completion, Prompt, SamplingParams


class ScriptedStepModel:
    def __init__(
        self, script: dict[str, list[tuple[str, float]]], model: str = "scripted-bfs-prover"
    ) -> None:
        self.script = script
        self.model = model
        self.revision = None
        self.prompts: list[Prompt] = []  # every prompt received, for assertions
        self.params: list[SamplingParams] = []  # every call's parameters

    def tactics_for(self, text: str) -> list[tuple[str, float]]:
        keys = [k for k in self.script if k in text]
        return self.script[max(keys, key=len)] if keys else []

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.params.append(params)
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            text = prompt.text or "\n".join(m["content"] for m in prompt.messages or ())
            proposed = self.tactics_for(text)
            samples = [proposed[i % len(proposed)] for i in range(params.n)] if proposed else []
            out.append(
                [
                    Completion(
                        tactic,
                        tokens=len(tactic.split()),
                        finish_reason="stop",
                        logprob=logprob if params.logprobs else None,
                        logprob_tokens=len(tactic.split()) if params.logprobs else None,
                    )
                    for tactic, logprob in samples
                ]
            )
        return out

    def close(self) -> None:
        pass
