"""plan_check: what is sent to Lean for a model's answer: a tactic block under the benchmark's
statement, a declared target as the model wrote it (never rewritten)."""

from __future__ import annotations

from prover.lean.extract import plan_check, statement_key, strip_code_fence, target_name
from prover.lean.verdict import CheckItem

HEADER = (
    "import Mathlib\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
)
NAME = "mathd_algebra_109"
STMT = "theorem mathd_algebra_109 (a b : ℝ) (h₀ : 3 * a + 2 * b = 12) (h₁ : a = 4) : b = 0 := by\n"
HEAD = STMT[: -len(" by\n")]  # "... : b = 0 :="


def plan(proof: str, stmt: str = STMT, name: str = "item-name"):
    return plan_check(CheckItem(name, HEADER, stmt, proof))


def test_name_from_statement_not_item() -> None:
    p = plan("  linarith\n", name="something-else")
    assert p.name == NAME
    assert target_name(CheckItem("x", HEADER, "theorem foo.bar : True := by\n", "")) == "foo.bar"


def test_tactic_block() -> None:
    p = plan("  subst h₁\n  linarith\n")
    assert p.code == STMT + "  subst h₁\n  linarith\n"
    assert (p.no_proof, p.banned) == (False, None)
    assert p.statement == HEAD
    assert "import" not in p.code  # the header is sent separately


def test_tactic_block_at_column_zero_is_indented() -> None:
    p = plan("subst h₁\nlinarith")
    assert p.code == STMT + "  subst h₁\n  linarith\n"


def test_single_line_tactic() -> None:
    assert plan("linarith").code == STMT + "  linarith\n"
    assert plan("   linarith  ").code == STMT + "  linarith\n"


def test_relative_indentation_kept() -> None:
    p = plan("nlinarith [sq_nonneg (a - b),\n  sq_nonneg (a + b)]\n")
    assert p.code == STMT + "  nlinarith [sq_nonneg (a - b),\n    sq_nonneg (a + b)]\n"


def test_tactic_block_cut_at_top_level_command() -> None:
    p = plan("  linarith\n\ntheorem other : False := sorry\n#eval 1\n")
    assert p.code == STMT + "  linarith\n"
    assert p.banned is None


def test_leading_by_and_assign_removed() -> None:
    assert plan("by\n  linarith").code == STMT + "  linarith\n"
    assert plan(":= by\n  linarith").code == STMT + "  linarith\n"


def test_leading_assign_term() -> None:
    p = plan(":= by_contra h; linarith")
    # `by_contra` is not `by`: a term proof after `:=`
    assert p.code == HEAD + " by_contra h; linarith\n"


def test_whole_file_with_header_lines() -> None:
    proof = (
        "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen Real\n\n"
        + STMT
        + "  linarith\n"
    )
    p = plan(proof)
    assert p.code == STMT + "  linarith\n"
    assert (p.no_proof, p.banned) == (False, None)


def test_helpers_kept_and_rest_dropped() -> None:
    proof = (
        "lemma aux (b : ℝ) (h : 2 * b = 0) : b = 0 := by linarith\n\n"
        + STMT
        + "  subst h₁\n  exact aux b (by linarith)\n\n"
        "theorem extra : False := sorry\n"
    )
    p = plan(proof)
    assert p.code == (
        "lemma aux (b : ℝ) (h : 2 * b = 0) : b = 0 := by linarith\n\n"
        + STMT
        + "  subst h₁\n  exact aux b (by linarith)\n"
    )
    assert "extra" not in p.code
    assert p.banned is None


def test_model_statement_sent_as_written() -> None:
    # a weakened statement is sent as is: Lean's statement check rejects it, not the text
    p = plan("theorem mathd_algebra_109 : True := by\n  trivial\n")
    assert p.code == "theorem mathd_algebra_109 : True := by\n  trivial\n"
    assert p.statement == "theorem mathd_algebra_109 : True :="
    assert not p.no_proof and p.banned is None
    assert p.statement_rewritten is False  # kept in verdicts for old readers, never set


def test_renamed_binders_kept() -> None:
    # `h0`/`h1` for the benchmark's `h₀`/`h₁`: the body names what the model's statement bound
    renamed = STMT.replace("h₀", "h0").replace("h₁", "h1")
    p = plan(renamed + "  subst h1\n  linarith [h0]\n")
    assert p.code == renamed + "  subst h1\n  linarith [h0]\n"
    assert "h₀" not in p.code


def test_whitespace_and_lemma_kept() -> None:
    proof = (
        "lemma mathd_algebra_109\n  (a b : ℝ)  (h₀ : 3 * a + 2 * b = 12)\n  (h₁ : a = 4) :\n"
        "  b = 0 := by\n  linarith\n"
    )
    p = plan(proof)
    assert p.code == proof
    assert statement_key(p.statement) == statement_key(HEAD)


def test_comment_in_signature_kept() -> None:
    proof = STMT.replace("(h₁ : a = 4)", "(h₁ : a = 4) -- given\n ") + "  linarith\n"
    p = plan(proof)
    assert p.code == proof
    assert statement_key(p.statement) == statement_key(HEAD)


def test_same_line_by() -> None:
    p = plan(STMT.replace(" := by\n", " := by linarith\n"))
    assert p.code == HEAD + " by linarith\n"


def test_term_proof() -> None:
    p = plan(STMT.replace(" := by\n", " :=\n  (by linarith : b = 0)\n"))
    assert p.code == HEAD + "\n  (by linarith : b = 0)\n"
    assert not p.no_proof


def test_by_block_at_column_zero_in_declaration() -> None:
    p = plan(STMT + "subst h₁\nlinarith\n")
    # `subst` is not a command keyword, so it stays in the body, indented for Lean
    assert p.code == STMT + "  subst h₁\n  linarith\n"


def test_first_target_taken() -> None:
    p = plan(STMT + "  sorry\n\n" + STMT + "  linarith\n")
    assert p.code == STMT + "  sorry\n"
    assert p.banned is None


def test_set_option_in_modifier_kept() -> None:
    p = plan("set_option maxHeartbeats 400000 in\n" + STMT + "  linarith\n")
    assert p.code == "set_option maxHeartbeats 400000 in\n" + STMT + "  linarith\n"
    assert p.banned is None


def test_debug_option_in_modifier_banned() -> None:
    p = plan("set_option debug.skipKernelTC true in\n" + STMT + "  linarith\n")
    assert p.banned is not None and "skipKernelTC" in p.banned


def test_doc_comment_attributes_and_modifiers_of_target_dropped() -> None:
    # `private` would rename the constant the statement check asks for
    p = plan("/-- doc -/\n@[simp] private " + STMT + "  linarith\n")
    assert p.code == STMT + "  linarith\n"


def test_code_fence() -> None:
    p = plan("Proof:\n```lean4\n" + STMT + "  linarith\n```\nDone.")
    assert p.code == STMT + "  linarith\n"
    p = plan("```lean\n  linarith\n```")
    assert p.code == STMT + "  linarith\n"


def test_closing_fence_only() -> None:
    p = plan("  linarith\n```\n\nexplanation with exact? in it")
    assert p.code == STMT + "  linarith\n"
    assert p.banned is None


def test_fence_prefers_block_declaring_target() -> None:
    text = "```lean4\n" + STMT + "  linarith\n```\nAlso:\n```lean4\nexample : True := trivial\n```"
    assert strip_code_fence(text, NAME) == STMT + "  linarith\n"
    assert strip_code_fence(text).startswith("example")
    assert strip_code_fence("no fence") == "no fence"


def test_no_proof_cases() -> None:
    for proof in [
        "",
        "   \n\n",
        "  -- just a comment\n",
        "/- nothing -/",
        STMT,
        STMT + "\n\n",
        "```lean4\n```",
        "theorem mathd_algebra_109 : b = 0\n",
        "by\n",
        ":= by",
    ]:
        assert plan(proof).no_proof, repr(proof)


def test_only_other_theorem_is_no_proof() -> None:
    assert plan("theorem my_theorem : True := trivial\n").no_proof


def test_banned_in_body_and_helpers() -> None:
    assert plan("  exact?\n").banned is not None
    assert plan("axiom c : False\n\n" + STMT + "  exact c.elim\n").banned is not None
    assert plan(STMT + "  #exit\n").banned is not None
    # banned constructs after the target are dropped, never sent
    assert plan(STMT + "  linarith\n\naxiom c : False\n").banned is None
    # in a comment: fine
    assert plan("  -- exact?\n  linarith\n").banned is None


def test_helper_reusing_target_name_banned() -> None:
    p = plan("theorem foo.mathd_algebra_109 : True := trivial\n\n" + STMT + "  linarith\n")
    assert p.banned is not None and "foo.mathd_algebra_109" in p.banned
    p = plan(
        "namespace X\ntheorem mathd_algebra_109 : True := trivial\nend X\n\n"
        + STMT
        + "  linarith\n"
    )
    assert p.banned is not None


def test_target_inside_open_namespace_banned() -> None:
    p = plan("namespace Cheat\n\n" + STMT + "  linarith\n")
    assert p.banned is not None and "Cheat" in p.banned


def test_helpers_separated_by_blank_line() -> None:
    p = plan("lemma a1 : True := trivial\n" + STMT + "  linarith\n")
    assert p.code == "lemma a1 : True := trivial\n\n" + STMT + "  linarith\n"
