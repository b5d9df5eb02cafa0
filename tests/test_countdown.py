"""The Python-verified countdown task: generator, verifier, the pool-like interface."""

from __future__ import annotations

import pytest

from harness.countdown import CountdownVerifier, check_answer, extract_answer, make_puzzles
from prover.lean.verdict import CheckItem


def test_generated_puzzles_are_solvable_and_varied() -> None:
    puzzles = make_puzzles(200, seed=3)
    assert len({p.name for p in puzzles}) == 200
    assert {len(p.numbers) for p in puzzles} == {3, 4, 5, 6}  # a spread of difficulty
    for p in puzzles:
        assert check_answer(p.numbers, p.target, f"<answer>{p.solution}</answer>") == ("ok", "")
    assert make_puzzles(5, seed=3) == puzzles[:5]  # reproducible


@pytest.mark.parametrize(
    ("answer", "reason", "detail"),
    [
        ("<answer>(3 + 4) * 5</answer>", "ok", ""),
        ("I think it is\n<answer>5 * (4 + 3)</answer>", "ok", ""),  # another correct answer
        ("35", "error", "uses numbers not given"),
        ("<answer>3 * 4 + 5</answer>", "error", "evaluates to 17"),
        ("<answer>(3 + 3) * 5</answer>", "error", "uses numbers not given (or too often): [3]"),
        ("<answer>5 / (4 - 4)</answer>", "error", "division by zero"),
        ("<answer>__import__('os').system('x')</answer>", "error", "only numbers"),
        ("<answer>3 ** 4</answer>", "error", "only numbers"),
        ("<answer>(3 + 4) *</answer>", "error", "not an arithmetic expression"),
        ("", "no_proof", "no expression"),
        ("<answer>" + "(" * 5000 + "3" + ")" * 5000 + "</answer>", "error", "too long"),
    ],
)
def test_verifier(answer: str, reason: str, detail: str) -> None:
    got_reason, got_detail = check_answer([3, 4, 5, 4], 35, answer)
    assert got_reason == reason and detail in got_detail


def test_extract_answer() -> None:
    assert extract_answer("a\n<answer>1+2</answer> then <answer>3*4</answer>") == "3*4"
    assert extract_answer("work...\n(3 + 4) * 5 = 35\n") == "(3 + 4) * 5"


def test_same_interface_as_the_lean_pool() -> None:
    p = make_puzzles(1, seed=1)[0]
    items = [
        CheckItem(p.name, "", p.statement(), f"<answer>{p.solution}</answer>"),
        CheckItem(p.name, "", p.statement(), "<answer>1</answer>"),
    ]
    with CountdownVerifier() as verifier:
        verdicts = [v for _, v in verifier.check_many(items)]
    assert [v.reason for v in verdicts][0] == "ok" and not verdicts[1].accepted
