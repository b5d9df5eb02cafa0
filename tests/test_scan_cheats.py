"""The soundness cheat classes: the scan reads Lean's own tokens, so none of them passes it.

The payload of every case: `set_option debug.skipKernelTC true` and a `run_cmd` / `run_tac`
that adds `theorem cheat : False := True.intro` unchecked, then `exact cheat.elim`. Lean would
report no error, no sorry and no axiom for it, so the scan is what refuses it (the replay rung
backs it up). Each case is checked through `plan_check` (the exact text sent to Lean), and
through the real CLI with a REPL double that accepts whatever reaches it.
"""

from __future__ import annotations

import json
import shlex

import pytest

from prover.lean.banned import find_banned
from prover.lean.extract import plan_check
from prover.lean.verdict import CheckItem

from conftest import run_prover

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen Real\n\n"
STMT = "theorem mathd_algebra_109 (a b : ℝ) (h₀ : 3 * a + 2 * b = 12) (h₁ : a = 4) : b = 0 := by\n"
ADD = (
    "Lean.addDecl (.thmDecl { name := `cheat, levelParams := [], "
    "type := Lean.mkConst ``False, value := Lean.mkConst ``True.intro })"
)
RUN_CMD = f"run_cmd Lean.Elab.Command.liftCoreM ({ADD})"
RUN_TAC = f"run_tac ({ADD})"
SKIP = "set_option debug.skipKernelTC true"
TARGET = STMT + "  exact cheat.elim\n"
# A first line that no header split can take: the cheats after it are in the text sent.
HELPER = "theorem helper : True := trivial\n"

# (case, model code declaring the target after the cheat)
COMMAND_CHEATS = [
    # 1. `/-/- -/` is one whole comment to Lean; the `-/` in the line comment closes nothing
    ("block-comment", f"/-/- -/ {SKIP}\n{RUN_CMD} -- -/\n\n{TARGET}"),
    # 2. `/--/` opens a doc comment that the `-/` inside the line comment closes
    ("doc-comment-slash", f"/--/ -- -/ {RUN_CMD}\n\n{TARGET}"),
    # 3. plain strings take no `{...}` holes
    ("string-braces", f'def s := "{{"\n{RUN_CMD}\ndef t := "}}"\n\n{TARGET}'),
    # 4. a numeral or char literal ends where a keyword starts
    ("numeral-set-option", f"def n := 1{SKIP}\ndef m := 2{RUN_CMD}\n\n{TARGET}"),
    ("char-run-cmd", f"def c := 'b'{RUN_CMD}\n\n{TARGET}"),
    # 5. `℘` is letter-like: `℘'` is a name, `"'x"` a string, then code
    ("letterlike-ident", f'def p := ℘\'"\'x" {RUN_CMD} -- "\n\n{TARGET}'),
    # more spellings
    ("run-cmd-mid-line", f"theorem h : True := trivial {RUN_CMD}\n\n{TARGET}"),
    ("guillemet-option", f"set_option «debug».skipKernelTC true in\n{TARGET}"),
    ("guillemet-option-whole", f"set_option «debug.skipKernelTC» true in\n{TARGET}"),
    ("eval-glued", f"theorem h : True := trivial#eval ({ADD} : Lean.CoreM Unit)\n\n{TARGET}"),
    ("eval-glued-suffix", f"theorem h : True := trivial#evalx 1\n\n{TARGET}"),
    ("after-string", f'def s := "x"{RUN_CMD}\n\n{TARGET}'),
    ("after-doc-comment", f"/-- doc -/{RUN_CMD}\n\n{TARGET}"),
    ("sudo", f"sudo {SKIP}\n\n{TARGET}"),
    ("mathlib-command", f"irreducible_def k : ℕ := 1\n\n{TARGET}"),
    ("library-note", f'library_note "x" /-- y -/\n\n{TARGET}'),
    ("universe", f"universe u\n\n{TARGET}"),
    ("structure", f"structure S where\n  x : ℕ\n\n{TARGET}"),
    ("interpolated-hole", f'def s := s!"{{({RUN_CMD} : Unit)}}"\n\n{TARGET}'),
    ("open-in-run-cmd", f"open Lean Elab Command in\n{RUN_CMD}\n\n{TARGET}"),
    ("unlisted-option", f"set_option compiler.extract_closed false\n\n{TARGET}"),
    ("unlisted-attribute", f"@[implemented_by id] def f (n : ℕ) : ℕ := n\n\n{TARGET}"),
    ("hash-command-col0", f"theorem h : True := by\n  trivial\n#my_command\n\n{TARGET}"),
]
COMMAND_CHEATS = [(case, HELPER + proof) for case, proof in COMMAND_CHEATS]
# (case, tactic block under the benchmark's statement; its first line is honest)
TACTIC_CHEATS = [
    ("run-tac", f"  {RUN_TAC}\n  exact cheat.elim"),
    ("tactic-set-option-in", f"  {SKIP} in\n  exact cheat.elim"),
    ("tactic-guillemet", "  set_option «debug».skipKernelTC true in exact cheat.elim"),
    ("block-comment-tactic", f"  /-/- -/ {RUN_TAC} -- -/\n  exact cheat.elim"),
    ("by-elab", "  exact by_elab pure (Lean.mkConst ``True.intro)"),
    ("numeral-run-tac", f"  exact (1{RUN_TAC})"),
    ("hash-command-mid-line", "  trivial#print axioms Classical.choice"),
]
TACTIC_CHEATS = [(case, "  norm_num\n" + proof) for case, proof in TACTIC_CHEATS]


def item(proof: str) -> CheckItem:
    return CheckItem("mathd_algebra_109", HEADER, STMT, proof)


@pytest.mark.parametrize(("case", "proof"), COMMAND_CHEATS + TACTIC_CHEATS)
def test_cheat_is_banned(case: str, proof: str) -> None:
    plan = plan_check(item(proof))
    assert plan.banned is not None, (case, plan.code)
    assert "\n" not in plan.banned and len(plan.banned) < 120


@pytest.mark.parametrize(("case", "proof"), COMMAND_CHEATS)
def test_cheat_is_banned_in_file_mode(case: str, proof: str) -> None:
    if case in ("mathlib-command", "library-note", "universe", "structure"):
        pytest.skip("harmless in a user's own file (FILE mode keeps its wider rules)")
    if case in ("unlisted-option",):
        pytest.skip("FILE mode bans `debug.*` options only")
    assert find_banned(HEADER + proof, file_mode=True) is not None, case


def test_file_header_is_scanned() -> None:
    # 6. the header lines of a file are scanned like the rest
    text = f"import Mathlib\n{SKIP}\n\n{TARGET}"
    assert "skipKernelTC" in (find_banned(text, file_mode=True) or "")
    assert find_banned(f"import Mathlib\n{SKIP} in\n{TARGET}", file_mode=True) is not None
    assert find_banned(HEADER + TARGET, file_mode=True) is None
    assert find_banned("\ufeff" + HEADER + TARGET, file_mode=True) is None  # a BOM
    assert "import" in (find_banned(HEADER + TARGET + "\nimport Cheat\n", file_mode=True) or "")


def test_strings_and_comments_neither_hide_nor_fake() -> None:
    honest = (
        STMT + '  -- run_cmd in a comment\n  /- #eval -/\n  have : "run_cmd".length = 7 := rfl\n'
    )
    honest = honest.replace("have :", "have h :")
    assert find_banned(honest + "  linarith\n") is None


def repl(fake_repl_script) -> str:
    # Lean as the cheats would have it: every command elaborates with no message
    return shlex.join(fake_repl_script([{"match": "", "response": {}}]).argv)


def test_every_cheat_banned_through_the_cli(fake_repl_script, tmp_path) -> None:
    rows = [
        {"id": case, "name": "mathd_algebra_109", "header": HEADER, "formal_statement": STMT,
         "proof": proof}
        for case, proof in COMMAND_CHEATS + TACTIC_CHEATS
    ]  # fmt: skip
    rows.append({**rows[0], "id": "honest", "proof": "  subst h₁\n  linarith\n"})
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.jsonl"
    log = tmp_path / "requests.jsonl"
    args = ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none"]
    result = run_prover(*args, "--repl", repl(fake_repl_script), env={"FAKE_REPL_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    verdicts = {v["id"]: v for v in map(json.loads, out.read_text().splitlines())}
    assert verdicts.pop("honest")["accepted"] is True  # the double does accept what it sees
    assert {k: v["reason"] for k, v in verdicts.items() if v["reason"] != "banned"} == {}
    sent = log.read_text() if log.exists() else ""
    assert "run_" not in sent and "skipKernelTC" not in sent  # nothing banned reached Lean


def test_file_mode_header_cheat_through_the_cli(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "cheat.lean"
    lean.write_text(f"import Mathlib\n{SKIP}\n\n{TARGET}")
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl",
                        repl(fake_repl_script))  # fmt: skip
    assert result.returncode == 1, result.stderr
    (verdict,) = json.loads(result.stdout)["theorems"]
    assert verdict["reason"] == "banned" and "skipKernelTC" in verdict["detail"]


def test_file_with_bom_accepted_through_the_cli(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "bom.lean"
    lean.write_bytes(("\ufeff" + HEADER + STMT + "  subst h₁\n  linarith\n").encode())
    log = tmp_path / "requests.jsonl"
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl",
                        repl(fake_repl_script), env={"FAKE_REPL_LOG": str(log)})  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["accepted"] is True and report["theorems"][0]["reason"] == "ok"
    sent = [r["cmd"] for r in map(json.loads, log.read_text().splitlines()) if "cmd" in r]
    # the header went as the header (imports first, no BOM), the theorem as its own command
    assert any(cmd.startswith("import Mathlib") for cmd in sent)
    assert not any("\ufeff" in cmd for cmd in sent)
    assert any("import" not in cmd and "theorem mathd_algebra_109" in cmd for cmd in sent)
