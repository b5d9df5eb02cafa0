"""A task with a Python verifier: countdown arithmetic puzzles.

Reach `target` from `numbers` with + - * / and parentheses, each number used at most once.
Problems have many correct answers and a spread of difficulty (3 to 6 numbers), so pass@k
and coverage mean something; everything runs here end to end, with no Lean. The verifier has
the interface of the Lean pool (`check`, `check_many` over `CheckItem`s, verdicts with the
same reasons), so the harness and training use either one the same way.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from prover.lean.verdict import CheckItem, Verdict

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True)
class Puzzle:
    name: str
    numbers: tuple[int, ...]
    target: int
    solution: str  # one known answer (there are usually many)

    def statement(self) -> str:
        """What goes in `CheckItem.formal_statement` (and in the prompt)."""
        return json.dumps({"numbers": list(self.numbers), "target": self.target})

    def prompt(self) -> str:
        numbers = ", ".join(map(str, self.numbers))
        return (
            f"Using the numbers {numbers}, each at most once, and + - * / with parentheses, "
            f"write an expression equal to {self.target}. Give it as <answer>EXPRESSION</answer>."
        )


def make_puzzles(
    count: int, *, seed: int = 0, min_numbers: int = 3, max_numbers: int = 6
) -> list[Puzzle]:
    """Solvable by construction: a random expression over random numbers gives the target."""
    rng = random.Random(seed)
    puzzles: list[Puzzle] = []
    while len(puzzles) < count:
        size = rng.randint(min_numbers, max_numbers)
        numbers = [rng.randint(1, 25) for _ in range(size)]
        used = rng.randint(2, size)
        expr, value = _random_expression(rng, numbers[:used])
        if value is None or value.denominator != 1 or not 1 <= value <= 999:
            continue
        rng.shuffle(numbers)
        puzzles.append(Puzzle(f"countdown_{seed}_{len(puzzles)}", tuple(numbers), int(value), expr))
    return puzzles


def _random_expression(rng: random.Random, numbers: list[int]) -> tuple[str, Fraction | None]:
    if len(numbers) == 1:
        return str(numbers[0]), Fraction(numbers[0])
    cut = rng.randint(1, len(numbers) - 1)
    left, lv = _random_expression(rng, numbers[:cut])
    right, rv = _random_expression(rng, numbers[cut:])
    if lv is None or rv is None:
        return "", None
    op = rng.choice("+-*/")
    if op == "/" and rv == 0:
        return "", None
    value = {"+": lv + rv, "-": lv - rv, "*": lv * rv, "/": lv / rv if rv else None}[op]
    return f"({left} {op} {right})", value


def extract_answer(text: str) -> str:
    """The expression in the last <answer>...</answer>, else the last non-empty line (a
    trailing `= target` dropped)."""
    found = _ANSWER.findall(text)
    answer = (
        found[-1]
        if found
        else next((line for line in reversed(text.strip().splitlines()) if line.strip()), "")
    )
    return answer.split("=")[0].strip()


def check_answer(numbers: Iterable[int], target: int, text: str) -> tuple[str, str]:
    """(reason, detail): `ok`, `no_proof` (no expression), or `error` (why it is wrong)."""
    answer = extract_answer(text)
    if not answer:
        return "no_proof", "no expression in the answer"
    if len(answer) > 500:  # no honest answer is longer; deep nesting would exhaust the stack
        return "error", "expression too long"
    try:
        tree = ast.parse(answer, mode="eval")
    except SyntaxError:
        return "error", f"not an arithmetic expression: {answer[:80]!r}"
    used: list[int] = []
    try:
        value = _evaluate(tree.body, used)
    except ZeroDivisionError:
        return "error", "division by zero"
    except ValueError as exc:
        return "error", str(exc)
    missing = Counter(used) - Counter(numbers)
    if missing:
        return "error", f"uses numbers not given (or too often): {sorted(missing.elements())}"
    if value != target:
        return "error", f"evaluates to {value}, not {target}"
    return "ok", ""


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    """Exact arithmetic over + - * / and integer literals only (no names, calls or powers)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, used), _evaluate(node.right, used)
        op = _OPS[type(node.op)]
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        return left / right  # ZeroDivisionError for x / 0
    raise ValueError(f"only numbers and + - * / are allowed, not {type(node).__name__}")


class CountdownVerifier:
    """The Lean pool's interface over the Python verifier (no processes, no Lean)."""

    workers = 1
    lean_version = None

    def check(self, item: CheckItem) -> Verdict:
        problem = json.loads(item.formal_statement)
        reason, detail = check_answer(problem["numbers"], problem["target"], item.proof)
        return Verdict(item.name, reason == "ok", reason, detail=detail)  # type: ignore[arg-type]

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        for item in items:
            yield item, self.check(item)

    def close(self) -> None:
        pass

    def __enter__(self) -> CountdownVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
