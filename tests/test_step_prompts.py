"""Step-level prompt formats: the published prompts exactly, one tactic read back out of a
sampled completion, the choice from the model name, and formats of the wrong kind refused."""

from __future__ import annotations

import pytest

from harness.tasks import COUNTDOWN_FORMATS
from prover.prompts import FORMATS, get_format
from prover.step_prompts import (
    STEP_FORMATS,
    StepState,
    check_prompt_format,
    choose_step_format,
    get_step_format,
    render_goals,
    step_format_for_model,
)

from conftest import run_prover

# Two goals as the REPL prints them after `induction n` (tests/data/repl-transcripts), and the
# tactics that led there.
TWO_GOALS = StepState(
    goals=("case zero\n⊢ 0 = 0", "case succ\nn✝ : Nat\n⊢ n✝ + 1 = 0"),
    theorem="zero_or_succ",
    statement="theorem zero_or_succ : ∀ n : Nat, n = 0 := by",
    path=("intro n", "induction n"),
)
# LeanDojo's ppTacticState (Lean4Repl.lean): the goals joined by a blank line, trimmed.
TWO_GOALS_PP = "case zero\n⊢ 0 = 0\n\ncase succ\nn✝ : Nat\n⊢ n✝ + 1 = 0"


def test_goals_render_as_leandojo_prints_a_tactic_state() -> None:
    assert render_goals(TWO_GOALS.goals) == TWO_GOALS_PP
    assert render_goals(["x : Nat\n⊢ x = x"]) == "x : Nat\n⊢ x = x"
    assert render_goals([]) == "no goals"
    assert render_goals(["⊢ True\n", "⊢ False"]) == "⊢ True\n\n\n⊢ False"


def test_step_state_is_hashable_whatever_sequences_it_is_given() -> None:
    state = StepState(goals=["⊢ True"], theorem="t", path=["trivial"])
    assert state.goals == ("⊢ True",) and state.path == ("trivial",)
    assert hash(state) == hash(StepState(goals=("⊢ True",), theorem="t", path=("trivial",)))


def test_bfs_prover_prompt_is_the_state_then_the_separator() -> None:
    # Model card ByteDance-Seed/BFS-Prover-V2-7B: `sep = ":::"; prompt = state + sep`;
    # repo ByteDance-Seed/BFS-Prover-V2 prover_manager.py: `tactic_state + ":::"`.
    prompt = STEP_FORMATS["bfs-prover"].prompt(TWO_GOALS)
    assert prompt.messages is None
    assert prompt.text == TWO_GOALS_PP + ":::"


def test_bfs_prover_prompt_of_the_model_card_example() -> None:
    # the card's imo_1964_p2 state, one goal
    state = (
        "a b c : ℝ\nh₀ : 0 < a ∧ 0 < b ∧ 0 < c\nh₁ : c < a + b\nh₂ : b < a + c\nh₃ : a < b + c\n"
        "⊢ a ^ 2 * (b + c - a) + b ^ 2 * (c + a - b) + c ^ 2 * (a + b - c) ≤ 3 * a * b * c"
    )
    assert STEP_FORMATS["bfs-prover"].prompt(StepState(goals=(state,))).text == state + ":::"


# repo InternLM/InternLM-Math, minif2f/proofsearch_internLM2.5-StepProver.py, verbatim:
#     input_template = (  f"---\nNAME: {theorem.full_name}\n\n"
#                             f"---\nPROOF_BEFORE: {proof_before}\n\n"
#                             f"---\nSTATE_BEFORE: {state}\n\n"
#                             f"---\nTACTIC: "
#                         )
#     prompt = [{"role": "user", "content": input_template}]
# with proof_before = "\n".join(steps).
def chat_template_to_prompt(prompt_list: list[dict[str, str]]) -> str:
    """The same script's rendering of the chat, verbatim."""
    result = ""
    total_step = len(prompt_list)
    for i, message in enumerate(prompt_list):
        result += "<|im_start|>" + message["role"] + "\n" + message["content"]
        if i + 1 != total_step:
            result += "<|im_end|>\n"
        elif message["role"] == "user":
            result += "<|im_end|>\n<|im_start|>assistant\n"
    return result


def test_internlm_step_prompt_names_the_theorem_and_the_tactics_so_far() -> None:
    prompt = STEP_FORMATS["internlm-step"].prompt(TWO_GOALS)
    assert prompt.text is None
    assert prompt.messages == (
        {
            "role": "user",
            "content": (
                "---\nNAME: zero_or_succ\n\n"
                "---\nPROOF_BEFORE: intro n\ninduction n\n\n"
                f"---\nSTATE_BEFORE: {TWO_GOALS_PP}\n\n"
                "---\nTACTIC: "
            ),
        },
    )
    assert chat_template_to_prompt(list(prompt.messages)) == (
        "<|im_start|>user\n---\nNAME: zero_or_succ\n\n---\nPROOF_BEFORE: intro n\ninduction n"
        f"\n\n---\nSTATE_BEFORE: {TWO_GOALS_PP}\n\n---\nTACTIC: <|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_internlm_step_prompt_at_the_root_has_an_empty_proof_before() -> None:
    root = StepState(goals=("⊢ True",), theorem="t")
    content = STEP_FORMATS["internlm-step"].prompt(root).messages[0]["content"]
    assert content == (
        "---\nNAME: t\n\n---\nPROOF_BEFORE: \n\n---\nSTATE_BEFORE: ⊢ True\n\n---\nTACTIC: "
    )


def test_goal_proofstep_prompt() -> None:
    # repo wellecks/llmstep: train/data.py `f"[GOAL]{state_before}[PROOFSTEP]"`,
    # server_vllm.py `"[GOAL]%s[PROOFSTEP]%s" % (tactic_state, prefix)` with no prefix.
    prompt = STEP_FORMATS["llemma-goal"].prompt(TWO_GOALS)
    assert prompt.text == f"[GOAL]{TWO_GOALS_PP}[PROOFSTEP]"


# repo wellecks/llemma_formal2formal, proofsearch.py `_prompt_fewshot`, verbatim.
LLEMMA_SOURCE = """Given the Lean 4 tactic state, suggest a next tactic.
Here are some examples:

Tactic state:
---
α : Type u_1
r : α → α → Prop
inst✝¹ : DecidableEq α
inst✝ : IsIrrefl α r
⊢ CutExpand r ≤ InvImage (Finsupp.Lex (rᶜ ⊓ fun x x_1 => x ≠ x_1) fun x x_1 => x < x_1) ↑toFinsupp
---
Next tactic:
---
rintro s t ⟨u, a, hr, he⟩
---

Tactic state:
---
ι : Type u_1
I✝ J✝ : Box ι
x y : ι → ℝ
I J : WithBot (Box ι)
⊢ ↑I = ↑J ↔ I = J
---
Next tactic:
---
simp only [Subset.antisymm_iff, ← le_antisymm_iff, withBotCoe_subset_iff]
---

Tactic state:
---
m n : ℕ
h : Nat.coprime m n
⊢ Nat.gcd m n = 1
---
Next tactic:
---
rw [← h.gcd_eq_one]
---

Tactic state:
---
%s
---
Next tactic:
---"""


def test_llemma_fewshot_prompt() -> None:
    prompt = STEP_FORMATS["llemma-fewshot"].prompt(TWO_GOALS)
    assert prompt.text == LLEMMA_SOURCE % (TWO_GOALS_PP,)


def test_a_state_with_braces_or_percents_is_put_in_verbatim() -> None:
    state = StepState(goals=("s : Set ℕ\n⊢ s = {x | x % 2 = 0} ∧ {state} = {state}",))
    for fmt in STEP_FORMATS.values():
        prompt = fmt.prompt(state)
        text = prompt.text if prompt.text is not None else prompt.messages[0]["content"]
        assert state.goals[0] in text


@pytest.mark.parametrize(
    ("name", "completion", "tactic"),
    [
        # BFS-Prover: the whole sample is the tactic (`x.text.strip()`), ended by eos
        ("bfs-prover", " nlinarith [sq_nonneg (a - b)]\n", "nlinarith [sq_nonneg (a - b)]"),
        ("bfs-prover", "simp<|endoftext|>a b : ℕ\n⊢ a = b:::rfl", "simp"),
        ("bfs-prover", "constructor\n· simp\n· omega", "constructor\n· simp\n· omega"),
        ("bfs-prover", "simp\na b : ℕ\n⊢ a = b:::rfl", None),  # ran on into a new state
        ("bfs-prover", "", None),
        ("bfs-prover", "  \n\t", None),
        ("bfs-prover", "<|endoftext|>", None),
        # InternLM2.5-StepProver: stop at <|im_end|>, eos removed, stripped
        ("internlm-step", "rw [← Nat.mod_add_div m 8]<|im_end|>\n", "rw [← Nat.mod_add_div m 8]"),
        ("internlm-step", "norm_num</s>", "norm_num"),
        ("internlm-step", "  linarith  ", "linarith"),
        ("internlm-step", "<|im_end|>norm_num", None),
        ("internlm-step", "\n", None),
        # [GOAL]/[PROOFSTEP]: the target ends in eos; a marker starts the next example
        ("llemma-goal", "intro h n<|endoftext|>", "intro h n"),
        ("llemma-goal", "exact h _[GOAL]⊢ True[PROOFSTEP]trivial", "exact h _"),
        ("llemma-goal", "simp[END]", "simp"),
        ("llemma-goal", "[PROOFSTEP]simp", None),
        ("llemma-goal", "   ", None),
        # Llemma few-shot: stop at `---`
        ("llemma-fewshot", "\nrw [← h.gcd_eq_one]\n---\n\nTactic state:\n", "rw [← h.gcd_eq_one]"),
        ("llemma-fewshot", "simp</s>", "simp"),
        ("llemma-fewshot", "\n---", None),
        ("llemma-fewshot", "", None),
    ],
)  # fmt: skip
def test_one_tactic_is_read_back(name: str, completion: str, tactic: str | None) -> None:
    assert STEP_FORMATS[name].tactic(completion) == tactic


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("ByteDance-Seed/BFS-Prover-V2-7B", "bfs-prover"),
        ("ByteDance-Seed/BFS-Prover-V2-32B", "bfs-prover"),
        ("ByteDance-Seed/BFS-Prover-V1-7B", "bfs-prover"),
        ("/models/bfs_prover_v2_32b", "bfs-prover"),
        ("internlm/internlm2_5-step-prover", "internlm-step"),
        ("InternLM2.5-StepProver", "internlm-step"),
        ("internlm/internlm2-step-prover", None),  # v1 wrote DECL/GOAL/PROOFSTEP
        ("EleutherAI/llemma_7b", "llemma-fewshot"),
        ("open-web-math/llemma_34b", "llemma-fewshot"),
        ("wellecks/llmstep-mathlib4-pythia2.8b", "llemma-goal"),
        ("Goedel-LM/Goedel-Prover-V2-8B", None),
        ("AI-MO/Kimina-Prover-Distill-1.7B", None),
    ],
)
def test_step_format_for_model(model: str, expected: str | None) -> None:
    assert step_format_for_model(model) == expected
    if expected is not None:
        assert choose_step_format(model, None).name == expected


def test_prompt_format_flag_overrides_the_model_name() -> None:
    chosen = choose_step_format("ByteDance-Seed/BFS-Prover-V2-7B", "llemma-goal")
    assert chosen.name == "llemma-goal"
    assert choose_step_format("my/own-finetune", "internlm-step").name == "internlm-step"


def test_a_model_with_no_known_step_format_must_name_one() -> None:
    with pytest.raises(ValueError, match="--prompt-format") as err:
        choose_step_format("my/own-finetune", None)
    assert "\n" not in str(err.value)
    for name in STEP_FORMATS:
        assert name in str(err.value)


def test_step_names_do_not_collide_with_whole_proof_or_task_names() -> None:
    assert not set(STEP_FORMATS) & set(FORMATS)
    assert not set(STEP_FORMATS) & set(COUNTDOWN_FORMATS)
    assert all(fmt.name == name for name, fmt in STEP_FORMATS.items())


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_whole_proof_format_is_refused_for_a_search(name: str) -> None:
    with pytest.raises(ValueError, match="is a whole-proof format") as err:
        check_prompt_format(name, step_level=True)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="whole-proof"):
        choose_step_format("ByteDance-Seed/BFS-Prover-V2-7B", name)
    check_prompt_format(name, step_level=False)


@pytest.mark.parametrize("name", sorted(STEP_FORMATS))
def test_a_step_format_is_refused_for_whole_proofs(name: str) -> None:
    with pytest.raises(ValueError, match="is a step-level format") as err:
        check_prompt_format(name, step_level=False)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="is a step-level format"):
        get_format(name)
    check_prompt_format(name, step_level=True)
    assert get_step_format(name).name == name


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown step-level prompt format 'nope'") as err:
        get_step_format("nope")
    for name in STEP_FORMATS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="unknown prompt format 'nope'"):
        check_prompt_format("nope", step_level=False)


def test_prove_with_a_step_format_is_a_one_line_usage_error(tmp_path) -> None:
    lean = tmp_path / "t.lean"
    lean.write_text("theorem t : True := by\n  sorry\n")
    done = run_prover("prove", str(lean), "--prompt-format", "bfs-prover", "--backend", "openai",
                      "--api-base", "http://127.0.0.1:9/v1", "--model", "x")  # fmt: skip
    assert done.returncode == 2
    assert "is a step-level format" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert lean.read_text() == "theorem t : True := by\n  sorry\n"
