"""Step-level prompt formats: how a proof state becomes a prompt for one tactic, and a sampled
completion that tactic.

Whole-proof formats (`prover.prompts`) ask for a proof; these ask a step-level prover for the
next tactic of a best-first search. Each reproduces the prompt its model was trained and
evaluated with (sources cited at each one). All of them show the state as LeanDojo's
`TacticState.pp` prints it, which is what those models saw in training and evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prover.models.base import Prompt

# End-of-sequence markers a backend may leave in a completion's text (Qwen2.5 / InternLM2 chat,
# Llama / InternLM2, GPT-NeoX / Qwen base, Llama 3): the tactic ends at the first one.
EOS_MARKERS = ("<|im_end|>", "</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>")


@dataclass(frozen=True)
class StepState:
    """One node of a search: the goals as the REPL prints them (each like
    `x : Nat\\n⊢ x = x`, with a `case tag` first line when Lean has one), the theorem being
    proved, and the tactics applied from the root to reach this state."""

    goals: tuple[str, ...]
    theorem: str = ""
    statement: str = ""
    path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # lists are accepted for convenience; the state stays hashable
        object.__setattr__(self, "goals", tuple(self.goals))
        object.__setattr__(self, "path", tuple(self.path))


def render_goals(goals: Sequence[str]) -> str:
    """The tactic state as LeanDojo prints it: repo lean-dojo/LeanDojo,
    src/lean_dojo/interaction/Lean4Repl.lean `ppTacticState`: "no goals" for none, the one
    goal as `Meta.ppGoal` prints it, several joined by a blank line and trimmed. The REPL's
    `goals` are `Meta.ppGoal` strings too, `case` tag included, so they are joined as they are."""
    if not goals:
        return "no goals"
    if len(goals) == 1:
        return goals[0]
    return "\n\n".join(goals).strip()


class StepPromptFormat(Protocol):
    name: str

    def prompt(self, state: StepState) -> Prompt:
        """The prompt asking for the next tactic at `state`."""
        ...

    def tactic(self, completion: str) -> str | None:
        """The one tactic in a sampled `completion`, or None when it holds none."""
        ...


def _cut(text: str, markers: Sequence[str]) -> str:
    """`text` up to the first of `markers`."""
    end = len(text)
    for marker in markers:
        at = text.find(marker)
        if 0 <= at < end:
            end = at
    return text[:end]


def _nonempty(text: str) -> str | None:
    text = text.strip()
    return text or None


BFS_SEPARATOR = ":::"


@dataclass(frozen=True)
class BFSProver:
    """BFS-Prover (V1 and V2, ByteDance-Seed): the state then `:::`, the model continues with
    the tactic and ends it with end-of-sequence.

    Prompt: model cards huggingface.co/ByteDance-Seed/BFS-Prover-V2-7B and -32B, "Usage"
    (`prompt = state + sep` with `sep = ":::"`), and the search code of repo
    ByteDance-Seed/BFS-Prover-V2 (read in the copy zeyu-zheng/BFS-Prover-V2),
    src/search/prover_manager.py: `tactic_state + ":::"` with `tactic_state` LeanDojo's
    `state.pp` (planner-free search); each sample's text is the tactic, `.strip()`ed. The card's
    `.split(sep)[1]` reads the tactic after the echoed prompt: a completion that itself holds
    `:::` ran on into a new state and is refused.
    """

    name: str = "bfs-prover"

    def prompt(self, state: StepState) -> Prompt:
        return Prompt(text=render_goals(state.goals) + BFS_SEPARATOR)

    def tactic(self, completion: str) -> str | None:
        text = _cut(completion, EOS_MARKERS)
        if BFS_SEPARATOR in text:
            return None
        return _nonempty(text)


@dataclass(frozen=True)
class InternLMStepProver:
    """InternLM2.5-StepProver: one user turn with the theorem's name, the tactics so far (one
    per line) and the state; the answer is the tactic, ended by `<|im_end|>`.

    Prompt: repo InternLM/InternLM-Math, minif2f/proofsearch_internLM2.5-StepProver.py:
    `_prompt_function` (this template, as the one user message), `proof_before =
    "\\n".join(steps)`, the state `_tactic_state` (LeanDojo's `state.pp`), generation with
    `stop=['<|im_end|>']`, the eos token removed and the text `.strip()`ed. The model card
    (huggingface.co/internlm/internlm2_5-step-prover, "Dialogue Example") shows the same
    template. The chat template (InternLM2's `<|im_start|>user ... <|im_end|>`) is the model's
    own, applied by the backend as the script's `chat_template_to_prompt` does.
    """

    name: str = "internlm-step"

    def prompt(self, state: StepState) -> Prompt:
        proof_before = "\n".join(state.path)
        content = (
            f"---\nNAME: {state.theorem}\n\n"
            f"---\nPROOF_BEFORE: {proof_before}\n\n"
            f"---\nSTATE_BEFORE: {render_goals(state.goals)}\n\n"
            "---\nTACTIC: "
        )
        return Prompt(messages=({"role": "user", "content": content},))

    def tactic(self, completion: str) -> str | None:
        return _nonempty(_cut(completion, EOS_MARKERS))


@dataclass(frozen=True)
class ProofstepGoal:
    """The proofstep objective in its Lean 4 form `[GOAL]{state}[PROOFSTEP]{tactic}<eos>`
    (PACT's proofstep task, Han et al. ICLR 2022, with the markers of the Llemma authors'
    `llmstep`): for models fine-tuned on (state, tactic) pairs written this way.

    Prompt: repo wellecks/llmstep, python/train/data.py `_fmt_proofstep` (input
    `[GOAL]{state_before}[PROOFSTEP]`, target `{tactic}<|endoftext|>`, states from LeanDojo
    Benchmark 4) and python/server_vllm.py (`"[GOAL]%s[PROOFSTEP]%s" % (tactic_state, prefix)`,
    the eos token removed). A marker in the completion means the model ran on into a next
    example: the tactic ends there.
    """

    name: str = "llemma-goal"

    def prompt(self, state: StepState) -> Prompt:
        return Prompt(text=f"[GOAL]{render_goals(state.goals)}[PROOFSTEP]")

    def tactic(self, completion: str) -> str | None:
        return _nonempty(_cut(completion, (*EOS_MARKERS, "[GOAL]", "[PROOFSTEP]", "[END]")))


# Llemma's formal-to-formal miniF2F evaluation: repo wellecks/llemma_formal2formal
# (also zhangir-azerbayev/llemma_formal2formal), proofsearch.py `_prompt_fewshot`, verbatim;
# its search samples with `stop='---'` and `.strip()`s each sample.
LLEMMA_FEWSHOT = """Given the Lean 4 tactic state, suggest a next tactic.
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
{state}
---
Next tactic:
---"""


@dataclass(frozen=True)
class LlemmaFewShot:
    """Llemma (EleutherAI/llemma_7b, llemma_34b) as its paper evaluated it on miniF2F: three
    worked (state, tactic) examples, then the state; the tactic ends at `---`
    (sources at LLEMMA_FEWSHOT)."""

    name: str = "llemma-fewshot"

    def prompt(self, state: StepState) -> Prompt:
        return Prompt(text=LLEMMA_FEWSHOT.replace("{state}", render_goals(state.goals)))

    def tactic(self, completion: str) -> str | None:
        return _nonempty(_cut(completion, ("---", *EOS_MARKERS)))


STEP_FORMATS: dict[str, StepPromptFormat] = {
    f.name: f for f in (BFSProver(), InternLMStepProver(), ProofstepGoal(), LlemmaFewShot())
}

# (pattern on the lowercased hub name or path, `_` read as `-`; format): first match wins.
# InternLM2-StepProver (v1) wrote `DECL`/`GOAL`/`PROOFSTEP`: only 2.5 takes `internlm-step`.
_MODEL_STEP_FORMATS: tuple[tuple[str, str], ...] = (
    (r"bfs-prover", "bfs-prover"),
    (r"internlm2[.-]?5-?step-?prover", "internlm-step"),
    (r"llmstep", "llemma-goal"),
    (r"llemma", "llemma-fewshot"),
)


def step_format_for_model(model: str) -> str | None:
    """The step-level format of a hub name, local directory or served model name; None when
    the name says nothing (the user must then pick one with `--prompt-format`)."""
    key = model.lower().replace("_", "-")
    for pattern, name in _MODEL_STEP_FORMATS:
        if re.search(pattern, key):
            return name
    return None


def _known() -> str:
    return ", ".join(sorted(STEP_FORMATS))


def get_step_format(name: str) -> StepPromptFormat:
    check_prompt_format(name, step_level=True)
    return STEP_FORMATS[name]


def choose_step_format(model: str, name: str | None) -> StepPromptFormat:
    """`--prompt-format NAME` if given, else the model's own step-level format.
    Raises ValueError (one line) when neither names one."""
    chosen = name or step_format_for_model(model)
    if chosen is None:
        raise ValueError(
            f"no step-level prompt format is known for model {model!r}: "
            f"choose one with --prompt-format ({_known()})"
        )
    return get_step_format(chosen)


def check_prompt_format(name: str, *, step_level: bool) -> None:
    """Refuse a prompt format of the wrong kind: a whole-proof one where a search needs a
    step-level one, or the other way round. Raises ValueError with a one-line message."""
    from prover.prompts import FORMATS  # here: prover.prompts refers back to this module

    if step_level:
        if name in STEP_FORMATS:
            return
        if name in FORMATS:
            raise ValueError(
                f"prompt format {name!r} is a whole-proof format; a best-first search needs "
                f"a step-level one ({_known()})"
            )
        raise ValueError(f"unknown step-level prompt format {name!r}; known: {_known()}")
    if name in STEP_FORMATS:
        raise ValueError(
            f"prompt format {name!r} is a step-level format: use it with --search best-first, "
            f"or pick a whole-proof format ({', '.join(sorted(FORMATS))})"
        )
    if name not in FORMATS:
        raise ValueError(
            f"unknown prompt format {name!r}; known formats: {', '.join(sorted(FORMATS))}"
        )
