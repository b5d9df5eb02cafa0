"""How a (state, tactic) pair becomes prompt and completion text for step-level SFT.

A local stand-in for the step-level prompt formats the search uses: the one interface
`StepText` (a name, `prompt(state)`, `completion(tactic)`) and the one place that picks it,
`step_text_for`. Training and search must agree on the text, so once the search's step formats
exist, `step_text_for` should return an adapter over them (`prompt(state).text`) instead of
`STEP_TEXTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class StepText(Protocol):
    name: str

    def prompt(self, state: str) -> str: ...

    def completion(self, tactic: str) -> str: ...


@dataclass(frozen=True)
class Separated:
    """The state, a separator, the tactic: the model continues the prompt with the tactic."""

    name: str
    separator: str

    def prompt(self, state: str) -> str:
        return f"{state}{self.separator}"

    def completion(self, tactic: str) -> str:
        return tactic


# BFS-Prover-V2's tactic generator (ByteDance-Seed/BFS-Prover-V2-7B model card, "Usage"): the
# prompt is the Lean tactic state followed by ":::", and the tactic is what follows ":::" in the
# output (`decode(...).split(":::")[1]`), with no space between.
BFS_PROVER = Separated("bfs-prover", ":::")

STEP_TEXTS: dict[str, StepText] = {BFS_PROVER.name: BFS_PROVER}
DEFAULT_STEP_TEXT = BFS_PROVER.name


def step_text_for(name: str | None) -> StepText:
    """The named step format (None: BFS-Prover's). ValueError, one line, for an unknown one."""
    chosen = STEP_TEXTS.get(name or DEFAULT_STEP_TEXT)
    if chosen is None:
        raise ValueError(f"{name!r} is not a step-level format (known: {', '.join(STEP_TEXTS)})")
    return chosen
