"""Prompt formats: how a benchmark problem becomes a model prompt, and an answer a proof.

Each format reproduces the prompt its model was trained and evaluated with (sources cited at
each one), so a benchmark run measures the model and not our wording. `proof_text` only cuts
the proof out of the answer; `prover.lean.extract.plan_check` then drops header lines, keeps
helpers and puts the benchmark's statement back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prover.lean.source import declarations
from prover.models.base import Prompt


@dataclass(frozen=True)
class Problem:
    """What a prompt is built from: one benchmark record."""

    name: str
    header: str
    formal_statement: str  # ends with `:= by`
    informal_prefix: str = ""  # e.g. "/-- ... -/\n" from DeepSeek's miniF2F data

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Problem:
        """A benchmark JSONL record (`name`, `header`, `formal_statement`, `informal_prefix`)."""
        return cls(
            name=str(record["name"]),
            header=str(record.get("header", "")),
            formal_statement=str(record["formal_statement"]),
            informal_prefix=str(record.get("informal_prefix") or ""),
        )


class PromptFormat(Protocol):
    name: str

    def build(self, problem: Problem) -> Prompt: ...

    def build_feedback(self, problem: Problem, attempt: str, errors: list[str]) -> Prompt:
        """A prompt that shows `attempt` and Lean's `errors` and asks for a corrected proof."""
        ...

    def proof_text(self, problem: Problem, completion: str) -> str:
        """What goes in `CheckItem.proof` for the model's `completion` of `build(problem)`."""
        ...


COMPLETE_CODE = "Complete the following Lean 4 code:\n\n```lean4\n"

# DeepSeek-Prover-V2 and Goedel-Prover-V2 append this to the code block (see the sources below).
PROOF_PLAN = (
    "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed "
    "proof plan outlining the main proof steps and strategies.\n"
    "The plan should highlight key ideas, intermediate lemmas, and proof structures that will "
    "guide the construction of the final formal proof."
)

# Goedel-Prover-V2's self-correction turn: repo Goedel-LM/Goedel-Prover-V2, src/utils.py,
# DeepSeekCoTHandler.generate_correction_prompt (read in the fork sean-lamont/Goedel-Prover-V2;
# only the README of the upstream repository is in the search index). Errors are numbered as
# its get_error_str does, at most 8 of them.
GOEDEL_CORRECTION = (
    "The proof (Round 0) is not correct. Following is the compilation error message, where we "
    "use <error></error> to signal the position of the error.\n\n{errors}\n\n"
    "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed "
    "analysis of the error message."
)
GOEDEL_MAX_ERRORS = 8

# Kimina-Prover: system prompt and user prompt of the model cards (huggingface.co/AI-MO/
# Kimina-Prover-Preview-Distill-7B, Kimina-Prover-72B), as quoted in Goedel-Prover-V2's
# src/utils.py KiminaCoTHandler (fork sean-lamont/Goedel-Prover-V2).
KIMINA_SYSTEM = "You are an expert in mathematics and Lean 4."
KIMINA_TASK = "Think about and solve the following problem step by step in Lean 4."
# Kimina's error-fixing turn: repo MoonshotAI/Kimina-Prover-Preview, kimina_prover_demo/
# error_fix.py (the errors go in a user message after the assistant's answer) and
# kimina_prover_demo/utils.py create_tool_message (at most 3 errors, this layout).
KIMINA_MAX_ERRORS = 3

GENERIC_CORRECTION = (
    "The proof is not correct. Following is the compilation error message.\n\n{errors}\n\n"
    "Analyse the error message, then give the corrected complete Lean 4 code, theorem "
    "statement included, in one ```lean4 code block."
)


def _statement(problem: Problem) -> str:
    """The statement without trailing blanks: it ends in `:= by`."""
    return problem.formal_statement.rstrip()


def _code(problem: Problem) -> str:
    return problem.header + problem.informal_prefix + _statement(problem)


def _informal(problem: Problem) -> str:
    """The informal problem text inside `informal_prefix`'s comment markers."""
    text = problem.informal_prefix.strip()
    text = re.sub(r"^/-[-!]?", "", text)
    return re.sub(r"-/$", "", text).strip()


def _comment_lines(text: str) -> str:
    """`text` as Lean line comments: safe whatever it contains (`-/`, fences)."""
    return "".join(f"-- {line}".rstrip() + "\n" for line in text.rstrip("\n").splitlines())


def _fenced(attempt: str) -> str:
    """The previous answer as the assistant said it: a raw answer keeps its own fences."""
    if "```" in attempt:
        return attempt
    code = attempt.strip("\n")
    return f"```lean4\n{code}\n```"


def _numbered(errors: list[str], limit: int, item: str, omitted: str) -> str:
    shown = [item.format(i=i, error=e.strip()) for i, e in enumerate(errors[:limit], 1)]
    if len(errors) > limit:
        shown.append(omitted.format(n=len(errors) - limit))
    return "".join(shown).strip("\n") if shown else "(no error message)"


# An opening fence alone on its line: ```lean4 / ```lean. The block runs to the next ``` (also
# at the end of a line, as in `sorry```` which Goedel's prompt itself shows), else to the end;
# a fence with a tag right after it opens the next block instead (a block left unclosed).
_LEAN_BLOCK_RE = re.compile(
    r"^[ \t]*```(?:lean4|lean)[ \t]*\n(.*?)(?:(?=```\w)|```|\Z)", re.M | re.S | re.I
)


def _target(problem: Problem) -> str:
    for decl in declarations(problem.formal_statement):
        if decl.keyword in ("theorem", "lemma") and decl.name:
            return decl.name
    return problem.name


def _declares(code: str, name: str) -> bool:
    return any(d.name == name or d.local_name == name for d in declarations(code))


def last_lean_block(problem: Problem, answer: str) -> str:
    """The last ```lean4 block of a chat answer (reasoning included), preferring one that
    declares the target; no block: the answer if it is code declaring the target, else ""."""
    blocks = [m.group(1) for m in _LEAN_BLOCK_RE.finditer(answer)]
    name = _target(problem)
    if not blocks:
        # no fence: bare code is the proof; prose (or reasoning cut off) is no proof at all
        return answer if _declares(answer, name) else ""
    declaring = [b for b in blocks if _declares(b, name)]
    return (declaring or blocks)[-1].rstrip() + "\n"


@dataclass(frozen=True)
class DeepSeekV15:
    """Whole-proof completion (DeepSeek-Prover-V1.5 base/SFT/RL): the model continues the code.

    Prompt: repo deepseek-ai/DeepSeek-Prover-V1.5, prover/utils.py `non_cot_prompt`
    ("Complete the following Lean 4 code:\\n\\n```lean4\\n{header}{informal_prefix}
    {formal_statement}"), also quick_start.py; the answer is cut at the first ``` as
    `post_process_output` there does.
    """

    name: str = "deepseek-v1.5"

    def build(self, problem: Problem) -> Prompt:
        # the statement ends in `:= by\n` in DeepSeek's data: the model starts on a new line
        return Prompt(text=COMPLETE_CODE + _code(problem) + "\n")

    def build_feedback(self, problem: Problem, attempt: str, errors: list[str]) -> Prompt:
        # A completion model has no turns: the attempt and the errors go in a comment block
        # before the statement, worded after Goedel-Prover-V2's DeepSeekNonCoTHandler
        # (src/utils.py, fork sean-lamont/Goedel-Prover-V2).
        note = (
            "-- The previous proof attempt (Round 0):\n"
            + _comment_lines(attempt)
            + "-- resulted in compilation errors:\n"
            + _comment_lines("\n".join(e.strip() for e in errors) or "(no error message)")
            + "-- Please provide a corrected version.\n"
        )
        text = COMPLETE_CODE + problem.header + note + problem.informal_prefix
        return Prompt(text=text + _statement(problem) + "\n")

    def proof_text(self, problem: Problem, completion: str) -> str:
        end = completion.find("```")
        return completion if end < 0 else completion[:end]


@dataclass(frozen=True)
class ChatLean4:
    """One user message with the statement ending in `sorry`; the answer's last ```lean4 block
    is the proof.

    `suffix` follows the code block (DeepSeek-Prover-V2 / Goedel-Prover-V2 ask for a proof plan);
    `sorry_sep` is what goes between `:= by` and `sorry`.
    """

    name: str = "chat-lean4"
    sorry_sep: str = " "
    close: str = "```"
    suffix: str = ""
    correction: str = GENERIC_CORRECTION

    def _user(self, problem: Problem) -> str:
        text = COMPLETE_CODE + _code(problem) + self.sorry_sep + "sorry" + self.close
        return text + ("\n\n" + self.suffix if self.suffix else "")

    def build(self, problem: Problem) -> Prompt:
        return Prompt(messages=({"role": "user", "content": self._user(problem)},))

    def build_feedback(self, problem: Problem, attempt: str, errors: list[str]) -> Prompt:
        listed = _numbered(
            errors,
            GOEDEL_MAX_ERRORS,
            "\nError {i}:\n\nError Message: {error}\n",
            "\n... [Omitted {n} more errors] ...\n",
        )
        return Prompt(
            messages=(
                {"role": "user", "content": self._user(problem)},
                {"role": "assistant", "content": _fenced(attempt)},
                {"role": "user", "content": self.correction.format(errors=listed)},
            )
        )

    def proof_text(self, problem: Problem, completion: str) -> str:
        return last_lean_block(problem, completion)


@dataclass(frozen=True)
class Kimina:
    """Kimina-Prover (Preview and later): system prompt, "# Problem:" and "# Formal statement:"
    sections, the statement ending in `:= by` without `sorry` (sources at KIMINA_SYSTEM)."""

    name: str = "kimina"

    def _messages(self, problem: Problem) -> tuple[dict[str, str], ...]:
        # no informal statement: Goedel-Prover-V2's KiminaCoTHandler puts the formal one there
        informal = _informal(problem) or _statement(problem)
        user = (
            f"{KIMINA_TASK}\n# Problem:{informal}"
            f"\n# Formal statement:\n```lean4\n{_code(problem)}\n\n```\n"
        )
        return ({"role": "system", "content": KIMINA_SYSTEM}, {"role": "user", "content": user})

    def build(self, problem: Problem) -> Prompt:
        return Prompt(messages=self._messages(problem))

    def build_feedback(self, problem: Problem, attempt: str, errors: list[str]) -> Prompt:
        listed = _numbered(
            errors,
            KIMINA_MAX_ERRORS,
            "# Error {i}:\nError message: \n{error}\n\n",
            "",
        )
        return Prompt(
            messages=(
                *self._messages(problem),
                {"role": "assistant", "content": _fenced(attempt)},
                {"role": "user", "content": listed + "\n"},
            )
        )

    def proof_text(self, problem: Problem, completion: str) -> str:
        return last_lean_block(problem, completion)


FORMATS: dict[str, PromptFormat] = {
    f.name: f
    for f in (
        DeepSeekV15(),
        # Generic chat (instruct models): the shared first line of the three prover prompts.
        ChatLean4(),
        Kimina(),
        # repo Goedel-LM/Goedel-Prover-V2: README.md "Quick Start" and src/utils.py
        # DeepSeekCoTHandler.prover_inference: "... := by sorry```" then the proof plan.
        ChatLean4(name="goedel-v2", suffix=PROOF_PLAN, correction=GOEDEL_CORRECTION),
        # repo deepseek-ai/DeepSeek-Prover-V2: README.md "Quick Start": the code block ends
        # "\n  sorry\n```", then the proof plan. No published self-correction prompt: Goedel's.
        ChatLean4(
            name="deepseek-v2",
            sorry_sep="\n  ",
            close="\n```",
            suffix=PROOF_PLAN,
            correction=GOEDEL_CORRECTION,
        ),
    )
}

# (pattern on the lowercased hub name or path, format): first match wins.
_MODEL_FORMATS: tuple[tuple[str, str], ...] = (
    (r"deepseek-prover-v1[.\-_]?5", "deepseek-v1.5"),
    (r"deepseek-prover-v2", "deepseek-v2"),
    (r"goedel-prover-v2", "goedel-v2"),
    (r"kimina-prover", "kimina"),
)
GENERIC_FORMAT = "chat-lean4"


def format_for_model(model: str) -> str:
    """Default format name for a hub name, local directory or served model name."""
    key = model.lower().replace("_", "-")
    for pattern, name in _MODEL_FORMATS:
        if re.search(pattern, key):
            return name
    return GENERIC_FORMAT


def get_format(name: str) -> PromptFormat:
    if name not in FORMATS:
        # a step-level name is refused with its own message, an unknown one lists the formats
        from prover.step_prompts import check_prompt_format

        check_prompt_format(name, step_level=False)
    return FORMATS[name]
