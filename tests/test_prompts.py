"""Prompt formats: the published prompts exactly, and proofs cut back out of model answers."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks import data_file
from prover.lean.extract import CheckPlan, plan_check
from prover.lean.source import split_header, strip_comments
from prover.lean.verdict import CheckItem
from prover.models.base import Prompt
from prover.prompts import FORMATS, Problem, format_for_model, get_format

from conftest import data_path

RECORDINGS = data_path("kimina-recordings") / "input"

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
PLAN = (
    "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed "
    "proof plan outlining the main proof steps and strategies.\nThe plan should highlight key "
    "ideas, intermediate lemmas, and proof structures that will guide the construction of the "
    "final formal proof."
)

# deepseek-ai/DeepSeek-Prover-V1.5 quick_start.py: its problem, and `prompt + code_prefix`.
V15 = Problem(
    name="amc12b_2003_p6",
    header=HEADER,
    informal_prefix=(
        "/-- The second and fourth terms of a geometric sequence are $2$ and $6$. Which of the "
        "following is a possible first term?\nShow that it is $\\frac{2\\sqrt{3}}{3}$.-/\n"
    ),
    formal_statement=(
        "theorem amc12b_2003_p6 (a r : ℝ) (u : ℕ → ℝ) (h₀ : ∀ k, u k = a * r ^ k) (h₁ : u 1 = 2)\n"
        "  (h₂ : u 3 = 6) : u 0 = 2 / Real.sqrt 3 ∨ u 0 = -(2 / Real.sqrt 3) := by\n"
    ),
)
V15_PROMPT = (
    "Complete the following Lean 4 code:\n\n```lean4\n"
    + HEADER
    + V15.informal_prefix
    + V15.formal_statement
)

# deepseek-ai/DeepSeek-Prover-V2 README.md Quick Start: its problem and `prompt.format(...)`.
V2 = Problem(
    name="mathd_algebra_10",
    header=HEADER,
    informal_prefix=(
        "/-- What is the positive difference between $120\\%$ of 30 and $130\\%$ of 20? "
        "Show that it is 10.-/\n"
    ),
    formal_statement=(
        "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by\n"
    ),
)
V2_USER = (
    "Complete the following Lean 4 code:\n\n```lean4\n"
    + HEADER
    + V2.informal_prefix
    + "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by\n"
    "  sorry\n```\n\n" + PLAN
)


def messages_of(prompt: Prompt) -> tuple[dict[str, str], ...]:
    assert prompt.messages is not None and prompt.text is None
    return prompt.messages


def test_deepseek_v15_prompt_is_the_published_one() -> None:
    assert FORMATS["deepseek-v1.5"].build(V15).text == V15_PROMPT
    # a statement stored without its final newline gets it back
    bare = Problem(V15.name, HEADER, V15.formal_statement.rstrip(), V15.informal_prefix)
    assert FORMATS["deepseek-v1.5"].build(bare).text == V15_PROMPT


def test_deepseek_v15_cuts_the_completion_at_the_closing_fence() -> None:
    fmt = FORMATS["deepseek-v1.5"]
    completion = "  nlinarith [sq_nonneg r]\n```\n\nDone. ```lean4\nexample : True := trivial\n```"
    assert fmt.proof_text(V15, completion) == "  nlinarith [sq_nonneg r]\n"
    assert fmt.proof_text(V15, "  simp\n  linarith") == "  simp\n  linarith"  # cut off: all of it


def test_deepseek_v2_prompt_is_the_published_one() -> None:
    prompt = FORMATS["deepseek-v2"].build(V2)
    assert prompt.text is None
    assert prompt.messages == ({"role": "user", "content": V2_USER},)


def test_goedel_v2_prompt() -> None:
    # Goedel-LM/Goedel-Prover-V2 src/utils.py DeepSeekCoTHandler: `... := by sorry```` + plan
    user = (
        "Complete the following Lean 4 code:\n\n```lean4\n"
        + HEADER
        + V2.informal_prefix
        + "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by "
        "sorry```\n\n" + PLAN
    )
    assert FORMATS["goedel-v2"].build(V2).messages == ({"role": "user", "content": user},)


def test_generic_chat_prompt() -> None:
    user = (
        "Complete the following Lean 4 code:\n\n```lean4\n"
        + HEADER
        + V2.informal_prefix
        + "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by "
        "sorry```"
    )
    assert FORMATS["chat-lean4"].build(V2).messages == ({"role": "user", "content": user},)


def test_kimina_prompt() -> None:
    user = (
        "Think about and solve the following problem step by step in Lean 4.\n"
        "# Problem:What is the positive difference between $120\\%$ of 30 and $130\\%$ of 20? "
        "Show that it is 10.\n# Formal statement:\n```lean4\n"
        + HEADER
        + V2.informal_prefix
        + V2.formal_statement
        + "\n```\n"
    )
    assert FORMATS["kimina"].build(V2).messages == (
        {"role": "system", "content": "You are an expert in mathematics and Lean 4."},
        {"role": "user", "content": user},
    )
    # no informal statement: the formal one stands in for it
    bare = Problem(V2.name, HEADER, V2.formal_statement)
    content = messages_of(FORMATS["kimina"].build(bare))[1]["content"]
    assert content.startswith(
        "Think about and solve the following problem step by step in Lean 4.\n"
        "# Problem:theorem mathd_algebra_10 "
    )


ATTEMPT = (
    "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by\n  simp"
)
ERRORS = ["3:2: error: simp made no progress", "3:2: error: unsolved goals\n⊢ False"]


def test_goedel_v2_feedback_is_a_follow_up_turn() -> None:
    messages = FORMATS["goedel-v2"].build_feedback(V2, ATTEMPT, ERRORS).messages
    assert messages is not None and len(messages) == 3
    assert messages[0] == messages_of(FORMATS["goedel-v2"].build(V2))[0]
    assert messages[1] == {"role": "assistant", "content": f"```lean4\n{ATTEMPT}\n```"}
    assert messages[2] == {
        "role": "user",
        "content": (
            "The proof (Round 0) is not correct. Following is the compilation error message, "
            "where we use <error></error> to signal the position of the error.\n\n"
            "Error 1:\n\nError Message: 3:2: error: simp made no progress\n\n"
            "Error 2:\n\nError Message: 3:2: error: unsolved goals\n⊢ False\n\n"
            "Before producing the Lean 4 code to formally prove the given theorem, provide a "
            "detailed analysis of the error message."
        ),
    }
    # a raw answer is replayed as it was; past 8 errors the rest are counted, not shown
    raw = f"Plan: simplify.\n```lean4\n{ATTEMPT}\n```"
    messages = FORMATS["goedel-v2"].build_feedback(V2, raw, [f"e{i}" for i in range(10)]).messages
    assert messages is not None and messages[1]["content"] == raw
    assert "Error 8:" in messages[2]["content"] and "Error 9:" not in messages[2]["content"]
    assert "[Omitted 2 more errors]" in messages[2]["content"]


def test_kimina_feedback_is_a_follow_up_turn() -> None:
    messages = FORMATS["kimina"].build_feedback(V2, ATTEMPT, ERRORS).messages
    assert messages is not None and [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert messages[3]["content"] == (
        "# Error 1:\nError message: \n3:2: error: simp made no progress\n\n"
        "# Error 2:\nError message: \n3:2: error: unsolved goals\n⊢ False\n"
    )


def test_generic_feedback_asks_for_complete_code() -> None:
    messages = FORMATS["chat-lean4"].build_feedback(V2, ATTEMPT, ERRORS).messages
    assert messages is not None and messages[2]["content"].startswith("The proof is not correct.")
    assert "complete Lean 4 code" in messages[2]["content"]
    assert "Error 2:\n\nError Message: 3:2: error: unsolved goals" in messages[2]["content"]


def test_deepseek_v15_feedback_comments_before_the_statement() -> None:
    text = FORMATS["deepseek-v1.5"].build_feedback(V15, "  nlinarith\n  -/ ```", ERRORS).text
    assert text is not None
    assert text == (
        "Complete the following Lean 4 code:\n\n```lean4\n"
        + HEADER
        + "-- The previous proof attempt (Round 0):\n--   nlinarith\n--   -/ ```\n"
        "-- resulted in compilation errors:\n-- 3:2: error: simp made no progress\n"
        "-- 3:2: error: unsolved goals\n-- ⊢ False\n-- Please provide a corrected version.\n"
        + V15.informal_prefix
        + V15.formal_statement
    )


# --- extraction on real outputs -------------------------------------------------------------


def recordings() -> list[tuple[Problem, str]]:
    out = []
    for path in sorted(RECORDINGS.glob("*.lean")):
        text = path.read_text()
        found = re.search(r"^theorem (\S+)", text, re.M)
        assert found, path
        name = found.group(1)
        header, rest, _ = split_header(text)
        stmt = re.search(rf"theorem {re.escape(name)}\b.*?:=\s*by", rest, re.S)
        assert stmt, path
        out.append((Problem(name, header, stmt.group(0), rest[: stmt.start()]), text))
    return out


def plan(problem: Problem, proof: str) -> CheckPlan:
    return plan_check(CheckItem(problem.name, problem.header, problem.formal_statement, proof))


def assert_recovered(got: CheckPlan, expected: CheckPlan) -> None:
    assert not got.no_proof and got.banned is None and not got.statement_rewritten
    assert got.code == expected.code


def chat_answer(problem: Problem, text: str, snippet: bool) -> str:
    """A reasoning model's answer: reasoning, a wrong draft in <think>, the final file, a remark."""
    draft = f"{problem.header}{problem.formal_statement}\n  nlinarith [sq_nonneg 0]"
    remark = "The key step is\n```lean4\n  linarith\n```\n" if snippet else "That proves it.\n"
    return (
        "We first study the hypotheses and reduce the goal to an inequality.\n\n"
        f"<think>\nA first draft:\n```lean4\n{draft}\n```\nThis fails: the bound is too weak."
        "\n</think>\n\nHere is the complete proof:\n\n"
        f"```lean4\n{text.rstrip()}\n```\n\n{remark}"
    )


CHAT_FORMATS = [n for n in FORMATS if n != "deepseek-v1.5"]


def test_recordings_are_all_there() -> None:
    assert len(recordings()) == 68


@pytest.mark.parametrize("snippet", [False, True])
@pytest.mark.parametrize("fmt", CHAT_FORMATS)
def test_chat_extraction_recovers_the_proof(fmt: str, snippet: bool) -> None:
    for problem, text in recordings():
        answer = chat_answer(problem, text, snippet)
        proof = FORMATS[fmt].proof_text(problem, answer)
        assert_recovered(plan(problem, proof), plan(problem, text))


def test_chat_extraction_without_fences_takes_bare_code() -> None:
    problem, text = recordings()[0]
    assert FORMATS["kimina"].proof_text(problem, text) == text
    assert_recovered(
        plan(problem, FORMATS["kimina"].proof_text(problem, text)), plan(problem, text)
    )


def test_chat_extraction_of_an_unclosed_last_block() -> None:
    problem, text = recordings()[0]
    answer = f"Proof:\n```lean4\n{text}"  # the answer ran out of tokens before the fence
    assert_recovered(
        plan(problem, FORMATS["goedel-v2"].proof_text(problem, answer)), plan(problem, text)
    )
    glued = f"```lean4\n{problem.formal_statement} sorry\n```lean4\n{text}\n```"
    assert_recovered(
        plan(problem, FORMATS["goedel-v2"].proof_text(problem, glued)), plan(problem, text)
    )


def code_lines(code: str) -> list[str]:
    """The code's non-blank lines with comments blanked out."""
    return [line.rstrip() for line in strip_comments(code).splitlines() if line.strip()]


def test_deepseek_v15_extraction_recovers_the_proof() -> None:
    fmt = FORMATS["deepseek-v1.5"]
    for problem, text in recordings():
        end = text.index(problem.formal_statement) + len(problem.formal_statement)
        chatter = "\n```\n\nThe proof uses nlinarith.\n```lean4\nexample : 1 = 1 := rfl\n```\n"
        got = plan(problem, fmt.proof_text(problem, text[end:] + chatter))
        expected = plan(problem, text)
        assert not got.no_proof and got.banned is None and not got.statement_rewritten
        # Equal up to comments: the informal comment before the theorem is in the prompt, not
        # the completion, and the extraction drops comment lines that open a tactic block.
        assert code_lines(got.code) == code_lines(expected.code), problem.name
        assert got.code.rstrip().endswith(text.rstrip().splitlines()[-1].rstrip())


@pytest.mark.parametrize(
    "fmt, answer",
    [
        ("kimina", "I could not find a proof of this statement."),
        ("goedel-v2", "<think>\nLet me try induction on n. Then the base case"),
        ("deepseek-v2", ""),
        ("chat-lean4", "Sorry, I can't help with that."),
        ("deepseek-v1.5", "```\nI could not complete the proof."),
        ("deepseek-v1.5", ""),
    ],
)
def test_an_answer_with_no_code_is_no_proof(fmt: str, answer: str) -> None:
    problem = V2
    got = plan(problem, FORMATS[fmt].proof_text(problem, answer))
    assert got.no_proof


# --- lookup ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, expected",
    [
        ("deepseek-ai/DeepSeek-Prover-V1.5-Base", "deepseek-v1.5"),
        ("deepseek-ai/DeepSeek-Prover-V1.5-SFT", "deepseek-v1.5"),
        ("deepseek-ai/DeepSeek-Prover-V1.5-RL", "deepseek-v1.5"),
        ("/models/deepseek-prover-v1_5-rl/checkpoint-200", "deepseek-v1.5"),
        ("AI-MO/Kimina-Prover-Preview-Distill-7B", "kimina"),
        ("AI-MO/Kimina-Prover-72B", "kimina"),
        ("AI-MO/Kimina-Prover-Distill-8B", "kimina"),
        ("Goedel-LM/Goedel-Prover-V2-8B", "goedel-v2"),
        ("Goedel-LM/Goedel-Prover-V2-32B", "goedel-v2"),
        ("deepseek-ai/DeepSeek-Prover-V2-7B", "deepseek-v2"),
        ("deepseek-ai/DeepSeek-Prover-V2-671B", "deepseek-v2"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "chat-lean4"),
        ("/tmp/my-finetune", "chat-lean4"),
    ],
)
def test_format_for_model(model: str, expected: str) -> None:
    assert format_for_model(model) == expected
    assert get_format(format_for_model(model)).name == expected


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown prompt format 'nope'") as err:
        get_format("nope")
    for name in FORMATS:
        assert name in str(err.value)


def test_problem_from_benchmark_record() -> None:
    path = data_file("minif2f-lean4.9-deepseek.jsonl")
    assert path is not None, "the DeepSeek miniF2F data does not ship in the benchmarks package"
    record = json.loads(path.read_text().splitlines()[0])
    problem = Problem.from_record(record)
    assert problem.informal_prefix.startswith("/--")
    text = FORMATS["deepseek-v1.5"].build(problem).text
    assert text == (
        "Complete the following Lean 4 code:\n\n```lean4\n"
        + record["header"]
        + record["informal_prefix"]
        + record["formal_statement"]
    )
