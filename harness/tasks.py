"""What differs between tasks: how a suite problem becomes a prompt and a `CheckItem`, and
which verifier judges it. Lean suites use the model's Lean prompt format and the Lean pool
(or a remote verifier); the countdown task its own prompt and the Python verifier."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.suites import Problem as SuiteProblem
from prover.lean.verdict import CheckItem
from prover.models.base import Prompt
from prover.prompts import Problem as PromptProblem
from prover.prompts import PromptFormat, format_for_model, get_format


@dataclass(frozen=True)
class CountdownFormat:
    """The countdown question as a chat turn (instruct models) or as plain text (base and
    tiny models with no chat template); the whole completion is the answer."""

    name: str = "countdown"
    chat: bool = True

    def build(self, problem: PromptProblem) -> Prompt:
        from harness.countdown import Puzzle

        spec = json.loads(problem.formal_statement)
        question = Puzzle(problem.name, tuple(spec["numbers"]), spec["target"], "").prompt()
        if self.chat:
            return Prompt(messages=({"role": "user", "content": question},))
        return Prompt(text=f"{question}\n")

    def build_feedback(self, problem: PromptProblem, attempt: str, errors: list[str]) -> Prompt:
        return self.build(problem)  # no feedback rounds in this task

    def proof_text(self, problem: PromptProblem, completion: str) -> str:
        return completion


COUNTDOWN_FORMATS: dict[str, PromptFormat] = {
    "countdown": CountdownFormat(),
    "countdown-text": CountdownFormat("countdown-text", chat=False),
}


def prompt_format_for(task: str, model: str, name: str | None) -> PromptFormat:
    """The format asked for, else the task's default (for Lean: the model's own format).
    Raises ValueError (one line) for a format that does not fit the task."""
    if task == "countdown":
        chosen = name or "countdown"
        if chosen not in COUNTDOWN_FORMATS:
            known = ", ".join(COUNTDOWN_FORMATS)
            raise ValueError(f"prompt format {chosen!r} does not fit a countdown suite ({known})")
        return COUNTDOWN_FORMATS[chosen]
    if name in COUNTDOWN_FORMATS:
        raise ValueError(f"prompt format {name!r} is for countdown suites, not Lean ones")
    return get_format(name or format_for_model(model))


def prompt_problem(problem: SuiteProblem) -> PromptProblem:
    return PromptProblem(
        problem.name,
        problem.header,
        problem.formal_statement,
        str(problem.extra.get("informal_prefix") or ""),
    )


def check_item(problem: SuiteProblem, proof: str) -> CheckItem:
    """Lean: the benchmark's own header and statement, with any declarations the suite puts
    above the theorem (PutnamBench answers) as the context environment."""
    return CheckItem(
        problem.name,
        problem.header,
        problem.formal_statement,
        proof,
        context=str(problem.extra.get("context") or ""),
    )


def learn_lean_version(verifier: Any, header: str) -> str | None:
    """The Lean version the verifier runs, known before the first check (cache keys need it).
    A known-good canary check runs first, through every rung: a verifier that cannot judge
    (no REPL, a header that does not elaborate, an unreachable server) stops the command here,
    before any sampling, with MachineryFailure (retried within the verifier's budget)."""
    from prover.errors import MachineryFailure
    from prover.lean.machinery import canary_item

    if hasattr(verifier, "learn_version"):  # Ray actors do this where the pool lives
        return verifier.learn_version(header)
    verdict = verifier.check(canary_item(header))
    if not verdict.accepted:
        raise MachineryFailure(
            "a known-good check was not accepted before sampling "
            f"({verdict.reason}: {verdict.detail or 'no detail'})"
        )
    return verifier.lean_version
