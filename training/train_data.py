"""Training rows and rewards for `prover train`, built the way `prover eval` builds its prompts
and check items, so that a model is trained on the prompts it is evaluated with.

Each row holds the prompt (text for completion formats, a list of chat messages for chat
formats: TRL's conversational prompt) and the columns `training.rewards.VerifierReward` reads.
The reward cuts the proof out of each completion with the prompt format's `proof_text`, as
`prover eval` does, before the verifier sees it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from harness.suites import Problem, Suite, SuiteError, load_suite
from harness.tasks import prompt_format_for, prompt_problem
from prover.prompts import Problem as PromptProblem
from prover.prompts import PromptFormat
from training.rewards import Verifier, VerifierReward, problem_row
from training.rewards import _text as completion_text
from training.train_config import ConfigError, DataSection

TASKS = ("lean", "countdown")
_DECLARATION = re.compile(r"^(?:theorem|lemma|example)\s+(?:[^\s:({\[]+\s*)?")


def load_training_suite(data: DataSection) -> Suite:
    """The training problems (`data.limit` of them at most)."""
    suite = _load(data.suite or "", data.split, "data.suite")
    if data.limit is not None:
        suite = Suite(suite.name, suite.lean_version, suite.source,
                      suite.problems[: data.limit], suite.task)  # fmt: skip
    return suite


def load_eval_suite(data: DataSection) -> Suite | None:
    if data.eval_suite is None:
        return None
    return _load(data.eval_suite, data.eval_split, "data.eval_suite")


def _load(spec: str, split: str | None, key: str) -> Suite:
    try:
        return load_suite(spec, split=split)
    except SuiteError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def choose_task(suite: Suite, verifier_kind: str | None) -> str:
    """The verifier named in the config, else the suite's own task."""
    return verifier_kind or suite.task


def choose_format(task: str, model_name: str, name: str | None) -> PromptFormat:
    """The prompt format `prover eval --model MODEL_NAME [--prompt-format NAME]` would use."""
    try:
        return prompt_format_for(task, model_name, name)
    except ValueError as exc:
        raise ConfigError(f"model.prompt_format: {exc}") from None


def training_rows(problems: Sequence[Problem], fmt: PromptFormat) -> list[dict[str, Any]]:
    rows = []
    for problem in problems:
        built = fmt.build(prompt_problem(problem))
        prompt: Any = built.text if built.text is not None else [dict(m) for m in built.messages]
        row = problem_row(
            prompt,
            problem.name,
            problem.formal_statement,
            header=problem.header,
            context=str(problem.extra.get("context") or ""),
        )
        row["informal_prefix"] = str(problem.extra.get("informal_prefix") or "")
        rows.append(row)
    return rows


def is_conversational(rows: Sequence[dict[str, Any]]) -> bool:
    return bool(rows) and isinstance(rows[0]["prompt"], list)


def normalise_statement(text: str) -> str:
    """A statement with its whitespace collapsed and its declaration keyword and name dropped,
    so that a renamed or re-indented copy of an evaluation theorem still matches."""
    collapsed = " ".join(text.split())
    return _DECLARATION.sub("", collapsed, count=1)


def overlap(train: Sequence[Problem], evaluation: Sequence[Problem]) -> list[tuple[str, str]]:
    """(training problem, evaluation problem) pairs with the same normalised statement."""
    held_out = {normalise_statement(p.formal_statement): p.name for p in evaluation}
    pairs = []
    for p in train:
        match = held_out.get(normalise_statement(p.formal_statement))
        if match is not None:
            pairs.append((p.name, match))
    return pairs


def overlap_message(pairs: list[tuple[str, str]], train: Suite, evaluation: Suite) -> str:
    shown = ", ".join(f"{a} = {b}" for a, b in pairs[:3]) + (" ..." if len(pairs) > 3 else "")
    return (
        f"{len(pairs)} of {len(train.problems)} training statements of {train.name} are in "
        f"the evaluation suite {evaluation.name} ({shown})"
    )


class FormattedReward:
    """`VerifierReward` over the proof the prompt format cuts out of each completion (as
    `prover eval` checks it), not over the raw completion."""

    __name__ = "verifier"  # TRL logs rewards under the function's name

    def __init__(self, verifier: Verifier, fmt: PromptFormat) -> None:
        self.inner = VerifierReward(verifier)
        self.fmt = fmt

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float]:
        def column(key: str, i: int) -> str:
            values = columns.get(key)
            return str(values[i] or "") if values is not None else ""

        proofs = [
            self.fmt.proof_text(
                PromptProblem(
                    column("name", i),
                    column("header", i),
                    column("formal_statement", i),
                    column("informal_prefix", i),
                ),
                completion_text(completion),
            )
            for i, completion in enumerate(completions)
        ]
        return self.inner(prompts, proofs, **columns)
