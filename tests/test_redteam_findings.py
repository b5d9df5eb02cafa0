"""Red-team findings against the verifier: each test asserts the CORRECT behaviour
(the cheat is rejected). Lean's behaviour is read from its source (cited per test); Lean cannot
run here, so the CLI tests use the scripted REPL double (tests/doubles/fake_repl.py) answering
as Lean would.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

from prover.lean.banned import find_banned
from prover.lean.extract import plan_check
from prover.lean.verdict import CheckItem

from conftest import run_prover

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen Real\n\n"
STMT = "theorem mathd_algebra_109 (a b : ℝ) (h₀ : 3 * a + 2 * b = 12) (h₁ : a = 4) : b = 0 := by\n"
ADD = (
    "Lean.addDecl (.thmDecl ⟨⟨`cheat, [], Lean.mkConst ``False⟩, "
    "Lean.mkConst ``True.intro, .all []⟩)"
)
RUN_CMD = f"run_cmd Lean.Elab.Command.liftCoreM ({ADD})"
SKIP = "set_option debug.skipKernelTC true"
TARGET = STMT + "  exact cheat.elim\n"


def item(proof: str) -> CheckItem:
    return CheckItem("mathd_algebra_109", HEADER, STMT, proof)


# --- 1. core tokens ending in `'` (`×'`, `Σ'`) read as a symbol then a char literal ---------
#
# Lean: `×'` is one token of every Lean (src/Init/Core.lean: `infixr:35 " ×' " => PProd`), as
# is `Σ'` (src/Init/NotationExtra.lean: `macro "Σ'" xs:explicitBinders ", " b:term`). The token
# function reads the longest token of the table (src/Lean/Parser/Basic.lean, `tokenFnAux`:
# neither `×` nor `Σ` is an identifier start, so the trie's `×'` / `Σ'` wins). After it,
# `'"'` is a char literal and the code goes on. Our lexer reads `×` then the char literal
# `' '`, then a string `"'...` that hides everything up to the next `"` (here in a comment).
# `first | trivial | ...` never elaborates its second branch, so Lean reports no error.

PPROD_CHEAT = (
    "theorem helper : True := by first | trivial | exact (True ×' '\"')\n"
    f'{SKIP}\n{RUN_CMD} -- "\n\n{TARGET}'
)
PSIGMA_CHEAT = (
    "theorem helper : True := by first | trivial | exact (Σ' '\"', True)\n"
    f'{SKIP}\n{RUN_CMD} -- "\n\n{TARGET}'
)


def test_pprod_token_quote_cannot_hide_commands() -> None:
    plan = plan_check(item(PPROD_CHEAT))
    assert plan.banned is not None, plan.code


def test_psigma_token_quote_cannot_hide_commands() -> None:
    plan = plan_check(item(PSIGMA_CHEAT))
    assert plan.banned is not None, plan.code


def test_pprod_quote_cheat_in_file_mode() -> None:
    assert find_banned(HEADER + PPROD_CHEAT, file_mode=True) is not None


def test_pprod_quote_cheat_through_the_cli(fake_repl_script, tmp_path: Path) -> None:
    # Lean as the cheat would have it: no message for anything (the kernel never saw `cheat`);
    # with --no-replay nothing but the scan stands between this text and "ok"
    argv = shlex.join(fake_repl_script([{"match": "", "response": {}}]).argv)
    row = {"id": "pprod", "name": "mathd_algebra_109", "header": HEADER,
           "formal_statement": STMT, "proof": PPROD_CHEAT}  # fmt: skip
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(row) + "\n")
    out = tmp_path / "verdicts.jsonl"
    result = run_prover("check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none",
                        "--no-replay", "--repl", argv)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (verdict,) = map(json.loads, out.read_text().splitlines())
    assert verdict["reason"] == "banned", verdict


# --- 1b. the same with a token no fixed list knows ------------------------------------------
#
# The token table grows with every import (any `notation`/`infix` of Mathlib or of a header's
# own library), so a token ending in `'` or `-` (or one such as `⋄/`) that the lexer does not
# list can swallow the character that would otherwise start a char literal or a comment. The
# scan therefore also reads every symbol with a following `'`, `-` or `/` glued on, and bans
# what either reading finds. `⋄'`, `⋄-`, `⋄/` stand for such unknown tokens.

UNKNOWN_QUOTE = (
    "theorem helper : True := by first | trivial | exact (True ⋄' '\"')\n"
    f'{SKIP}\n{RUN_CMD} -- "\n\n{TARGET}'
)
UNKNOWN_DASH = f"theorem helper : True := by first | trivial | exact (x ⋄-- ) {RUN_CMD}\n\n{TARGET}"
UNKNOWN_SLASH = (
    "theorem helper : True := by first | trivial | exact (x ⋄/- )\n"
    f"{SKIP}\n{RUN_CMD}\n-- -/\n\n{TARGET}"
)


def test_unknown_token_glued_quote_dash_or_slash_cannot_hide_commands() -> None:
    for cheat in (UNKNOWN_QUOTE, UNKNOWN_DASH, UNKNOWN_SLASH):
        assert plan_check(item(cheat)).banned is not None, cheat
        assert find_banned(HEADER + cheat, file_mode=True) is not None, cheat


def test_glued_reading_keeps_honest_literals_and_comments() -> None:
    honest = (
        "theorem helper : ('a' : Char) = 'a' := rfl\n"
        "theorem h2 (x : ℤ) : -(-x) = x := by simp -- run_cmd in a comment after a space\n"
        "/- run_cmd in a block comment -/\n" + TARGET.replace("exact cheat.elim", "linarith")
    )
    assert plan_check(item(honest)).banned is None


# --- 2. attributes inside `to_additive (attr := ...)` are never judged ------------------------
#
# Mathlib `Mathlib/Tactic/ToAdditive/Frontend.lean` (to_additive docstring): "Use the
# `(attr := ...)` syntax to apply attributes to both the multiplicative and the additive
# version". `to_additive` is on ALLOWED_ATTRIBUTES; the scan judges only the first name after
# `[` or `,`, so `command_elab` here (a registered elaborator for `example` commands: the
# verifier's own statement check `example : type_of% ...` becomes a no-op) passes. A `def`
# of type `CommandElab` is allowed model code.

ELAB_DEF = (
    "@[to_additive (attr := command_elab Lean.Parser.Command.example) skipAdd]\n"
    "def skipMul [Mul ℕ] : Lean.Elab.Command.CommandElab := fun _ => pure ()\n\n"
)


def test_attribute_inside_to_additive_attr_is_judged() -> None:
    plan = plan_check(item(ELAB_DEF + STMT + "  trivial\n"))
    assert plan.banned is not None, plan.code


def test_attribute_command_inside_to_additive_attr_is_judged() -> None:
    attr = "attribute [to_additive (attr := command_elab Lean.Parser.Command.example) fooAdd] foo"
    text = attr + "\n\n" + STMT + "  linarith\n"
    assert plan_check(item(text)).banned is not None


# --- 3. the verdict cache does not tell replayed verdicts from unreplayed ones ---------------
#
# harness/eval_run.py `_checker`: the cache identity holds the Lean version, RULES_REVISION,
# allow_native and where Lean runs, not `replay`. A verdict accepted by a `--no-replay` run
# (nothing re-checked through the kernel) is then reused, as "ok", by a later run with the
# replay rung on that shares the `--cache` directory.


def test_cache_identity_depends_on_replay() -> None:
    from harness.eval_run import _checker
    from prover.lean.pool import VerifierConfig

    def settings(replay: bool) -> SimpleNamespace:
        return SimpleNamespace(suite=SimpleNamespace(task="minif2f"),
                               verifier_config=VerifierConfig(replay=replay))  # fmt: skip

    assert _checker(settings(True), "4.24.0") != _checker(settings(False), "4.24.0")


# --- 4. FILE mode: a banned command inside one theorem's span bans only that theorem ---------
#
# Lean's command parser starts a new command wherever the previous one ends (src/Lean/
# Parser/Module.lean `parseCommand`): `set_option debug.skipKernelTC true` indented under a
# term proof is a command of its own, for the whole rest of the file. filecheck.`_banned`
# attributes the hit to the theorem whose line span holds it, so the LATER theorem that uses
# what the banned command did is judged as if nothing happened.


def test_file_mode_banned_command_bans_the_theorems_after_it(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "cheat.lean"
    lean.write_text(
        "import Mathlib\n\ntheorem a : True := trivial\n  "
        + SKIP
        + "\n  "
        + RUN_CMD
        + "\n\n"
        + TARGET
    )
    argv = shlex.join(fake_repl_script([{"match": "", "response": {}}]).argv)
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--no-replay",
                        "--repl", argv)  # fmt: skip
    report = json.loads(result.stdout)
    by_name = {v["name"]: v for v in report["theorems"]}
    assert by_name["mathd_algebra_109"]["accepted"] is False, by_name


# --- 5. FILE mode: an `example` is never checked for axioms --------------------------------
#
# filecheck judged an example on rungs 1-4 only (`#print axioms` cannot name it) and the replay
# rung skipped it too, yet it counted as accepted. `native_decide` (axiom Lean.ofReduceBool,
# refused without --allow-native for every theorem) or any unchecked constant it uses go
# unseen: Lean reports no message for `example : 2 + 2 = 4 := by native_decide`.


def test_file_mode_example_is_judged_on_its_axioms(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "ex.lean"
    lean.write_text("import Mathlib\n\nexample : (2 : ℕ) + 2 = 4 := by native_decide\n")
    argv = shlex.join(fake_repl_script([{"match": "", "response": {}}]).argv)
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl", argv)
    report = json.loads(result.stdout)
    assert report["accepted"] is False, report
