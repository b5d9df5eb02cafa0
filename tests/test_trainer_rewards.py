"""verifier_reward: TRL reward functions over any verifier with the Lean pool's interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from harness.countdown import CountdownVerifier, Puzzle
from prover.errors import MachineryFailure
from prover.lean.verdict import CheckItem, Verdict
from training.rewards import countdown_rows, verifier_reward

PUZZLES = [Puzzle("a", (1, 2, 3), 6, "1+2+3"), Puzzle("b", (4, 5), 20, "4*5")]
ANSWERS = ["<answer>1 + 2 + 3</answer>", "<answer>4 + 5</answer>", "4*5", "", "2*3"]
EXPECTED = [1.0, 0.0, 1.0, 0.0, 1.0]
WHICH = [0, 1, 1, 1, 0]  # the puzzle each answer is for


def columns() -> dict[str, list]:
    rows = [countdown_rows(PUZZLES)[i] for i in WHICH]
    return {key: [row[key] for row in rows] for key in rows[0]}


class Reversed:
    """Yields verdicts in the opposite order, as a pool's workers may."""

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        yield from reversed(list(CountdownVerifier().check_many(items)))


@pytest.mark.parametrize("verifier", [CountdownVerifier(), Reversed()])
def test_rewards_follow_the_verdicts_per_completion(verifier) -> None:
    data = columns()
    reward = verifier_reward(verifier)
    assert reward(prompts=data.pop("prompt"), completions=ANSWERS, **data) == EXPECTED
    assert reward.__name__ == "verifier"  # TRL logs rewards/verifier/mean


def test_conversational_completions_and_problems_by_prompt() -> None:
    prompts = [PUZZLES[i].prompt() for i in WHICH]
    by_prompt = {p.prompt(): CheckItem(p.name, "", p.statement(), "") for p in PUZZLES}
    completions = [[{"role": "assistant", "content": text}] for text in ANSWERS]
    reward = verifier_reward(CountdownVerifier(), by_prompt)
    assert reward(prompts=prompts, completions=completions) == EXPECTED


def test_a_dataset_without_problem_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="problem_row"):
        verifier_reward(CountdownVerifier())(prompts=["x"], completions=["1"])


class BreaksOnCheck:
    """A verifier double whose machinery fails on its Nth check (as a Lean pool whose REPL can
    no longer start raises), after answering the checks before it."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        for item in items:
            self.calls += 1
            if self.calls >= self.n:
                raise MachineryFailure(f"the REPL could not start (check {self.calls})")
            yield item, CountdownVerifier().check(item)


class Drops:
    """A verifier double that ends without a verdict for some items."""

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        yield from list(CountdownVerifier().check_many(items))[:2]


@pytest.mark.parametrize("n", [1, 3, len(ANSWERS)])
def test_a_machinery_failure_is_raised_never_a_zero_reward(n: int) -> None:
    data = columns()
    verifier = BreaksOnCheck(n)
    with pytest.raises(MachineryFailure, match=f"check {n}"):
        verifier_reward(verifier)(prompts=data.pop("prompt"), completions=ANSWERS, **data)
    assert verifier.calls == n  # stopped at once


def test_the_formatted_reward_passes_a_machinery_failure_through() -> None:
    from training.train_data import FormattedReward, choose_format

    data = columns()
    fmt = choose_format("countdown", "toy", "countdown-text")
    with pytest.raises(MachineryFailure, match="check 2"):
        FormattedReward(BreaksOnCheck(2), fmt)(data.pop("prompt"), ANSWERS, **data)


def test_a_verifier_that_gives_no_verdict_for_some_completions_is_machinery() -> None:
    data = columns()
    with pytest.raises(MachineryFailure, match="no verdict for 3 of 5 completions"):
        verifier_reward(Drops())(prompts=data.pop("prompt"), completions=ANSWERS, **data)
