"""TRL reward functions from verifiers with the Lean pool's interface (`check_many` over
`CheckItem`s), and dataset rows that carry what the verifier needs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from harness.countdown import Puzzle
from prover.errors import MachineryFailure
from prover.lean.verdict import CheckItem, Verdict


class Verifier(Protocol):
    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]: ...


class VerifierReward:
    """A TRL reward function: 1.0 where the verifier accepts the completion, else 0.0.

    Each completion's problem comes from the dataset's `name` and `formal_statement` columns
    (and optional `header` and `context`; see `problem_row`), or, given `problems_by_prompt`,
    from the prompt (a CheckItem whose `proof` is ignored). The completion's whole text is the
    proof: the verifier extracts the answer (a fenced Lean block, `<answer>...</answer>`).
    """

    __name__ = "verifier"  # TRL logs rewards under the function's name

    def __init__(
        self, verifier: Verifier, problems_by_prompt: Mapping[str, CheckItem] | None = None
    ) -> None:
        self.verifier = verifier
        self.problems_by_prompt = problems_by_prompt

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float]:
        if self.problems_by_prompt is None and "formal_statement" not in columns:
            raise ValueError(
                "the dataset has no formal_statement column: build rows with problem_row() "
                "(or countdown_rows()), or pass problems_by_prompt"
            )
        items = [
            self._item(i, prompt, _text(completion), columns)
            for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))
        ]
        # check_many yields verdicts as they finish, not in order; a MachineryFailure it raises
        # passes through: a broken verifier stops training, its silence is never reward 0
        position = {id(item): i for i, item in enumerate(items)}
        rewards: list[float | None] = [None] * len(items)
        for item, verdict in self.verifier.check_many(items):
            rewards[position[id(item)]] = 1.0 if verdict.accepted else 0.0
        missing = sum(reward is None for reward in rewards)
        if missing:
            raise MachineryFailure(
                f"the verifier returned no verdict for {missing} of {len(items)} completions"
            )
        return [reward or 0.0 for reward in rewards]

    def _item(self, i: int, prompt: Any, proof: str, columns: Mapping[str, Any]) -> CheckItem:
        if self.problems_by_prompt is not None:
            p = self.problems_by_prompt[_text(prompt)]
            return CheckItem(p.name, p.header, p.formal_statement, proof, context=p.context)

        def column(key: str) -> str:
            values = columns.get(key)
            return (values[i] if values is not None else None) or ""

        return CheckItem(
            column("name"),
            column("header"),
            column("formal_statement"),
            proof,
            context=column("context"),
        )


def verifier_reward(
    verifier: Verifier, problems_by_prompt: Mapping[str, CheckItem] | None = None
) -> VerifierReward:
    return VerifierReward(verifier, problems_by_prompt)


def problem_row(
    prompt: Any, name: str, formal_statement: str, header: str = "", context: str = ""
) -> dict[str, Any]:
    """One dataset row: the prompt TRL samples from, and the columns `VerifierReward` reads."""
    return {
        "prompt": prompt,
        "name": name,
        "header": header,
        "formal_statement": formal_statement,
        "context": context,
    }


def countdown_rows(puzzles: Iterable[Puzzle]) -> list[dict[str, Any]]:
    return [problem_row(p.prompt(), p.name, p.statement()) for p in puzzles]


def _text(message: Any) -> str:
    """A plain completion, or a conversation's last message (TRL's conversational format)."""
    if isinstance(message, str):
        return message
    content = message[-1]["content"]
    if isinstance(content, list):  # content blocks
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content
