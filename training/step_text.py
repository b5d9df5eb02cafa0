"""How a (state, tactic) pair becomes the prompt and completion SFT trains on: the step-level
prompt format the search samples with (`prover.step_prompts`), so that a model is trained on
the prompts it is searched with.

The prompt is the format's own (`prompt(StepState)`): text, or chat messages for a chat format
(TRL's conversational prompt-completion rows). The completion is what the format reads a tactic
from: the tactic itself for most (the trainer appends end-of-sequence), and for the few-shot
format the tactic between the `---` lines its examples use. A pair whose completion the format
would not read back as the same tactic (`tactic(completion)`) is not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prover.step_prompts import (
    StepPromptFormat,
    StepState,
    check_prompt_format,
    get_step_format,
    step_format_for_model,
)
from training.tactic_data import TacticPair

# A step model trained here with no format named, on a model whose name says none
DEFAULT_STEP_FORMAT = "bfs-prover"
# The completion around the tactic, per format (default: the tactic alone). llemma-fewshot's
# prompt ends "Next tactic:\n---"; its examples go on "\n{tactic}\n---" (LLEMMA_FEWSHOT).
_AROUND: dict[str, tuple[str, str]] = {"llemma-fewshot": ("\n", "\n---")}


@dataclass(frozen=True)
class StepText:
    """A step format and how its rows are written."""

    fmt: StepPromptFormat

    @property
    def name(self) -> str:
        return self.fmt.name

    def row(self, pair: TacticPair) -> dict[str, Any] | None:
        """{prompt, completion} for TRL, or None when the format would not read the tactic
        back from the completion (e.g. a BFS-Prover tactic holding `:::`)."""
        state = StepState(goals=(pair.state,), theorem=pair.full_name, path=pair.previous)
        before, after = _AROUND.get(self.name, ("", ""))
        completion = f"{before}{pair.tactic}{after}"
        if self.fmt.tactic(completion) != pair.tactic.strip():
            return None
        prompt = self.fmt.prompt(state)
        if prompt.text is not None:
            return {"prompt": prompt.text, "completion": completion}
        messages = [dict(m) for m in prompt.messages or ()]
        return {"prompt": messages, "completion": [{"role": "assistant", "content": completion}]}


def step_text_for(model_name: str | None, name: str | None) -> StepText:
    """`model.prompt_format` if set, else the model name's step format, else BFS-Prover's.
    ValueError (one line) for an unknown name or a whole-proof format."""
    chosen = name or (step_format_for_model(model_name) if model_name else None)
    chosen = chosen or DEFAULT_STEP_FORMAT
    check_prompt_format(chosen, step_level=True)
    return StepText(get_step_format(chosen))
