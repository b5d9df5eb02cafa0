"""ScriptedModel: a test double of a model backend (no model can be sampled meaningfully here),
driven through the same `ModelBackend` interface. It answers each prompt with the scripted
completions of the first theorem name it finds in the prompt, cycling through them."""

from __future__ import annotations

from collections.abc import Sequence

from prover.models.base import Completion, Prompt, SamplingParams


class ScriptedModel:
    def __init__(self, script: dict[str, list[str]], model: str = "scripted") -> None:
        self.script = script
        self.model = model
        self.revision = None
        self.prompts: list[Prompt] = []  # every prompt received, for assertions
        self._served: dict[str, int] = {}

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            text = prompt.text or "\n".join(m["content"] for m in prompt.messages or ())
            name = next((n for n in self.script if f"theorem {n} " in text), None)
            answers = self.script.get(name, ["  sorry"]) if name else ["  sorry"]
            start = self._served.get(name or "", 0)
            picked = [answers[(start + i) % len(answers)] for i in range(params.n)]
            self._served[name or ""] = start + params.n
            out.append([Completion(a, tokens=len(a.split()), finish_reason="stop") for a in picked])
        return out

    def close(self) -> None:
        pass
