"""Every known scan-bypass class through the real CLI (`prover check --jsonl` and
`prover check FILE.lean`), with the FakeRepl double answering as Lean would (scripted, see
tests/doubles/selftest_lean.py): each payload hidden from the old hand-written lexer is now
refused, and a statement that renames `h₀` to `h0` is accepted as written."""

from __future__ import annotations

import json
import shlex
import sys

from prover.lean.canaries import builtin

from conftest import FAKE_REPL, run_prover
from doubles.selftest_lean import write_rules

CLASSES = {
    "cheat-block-comment": "1: `/-/- -/` is one comment",
    "cheat-doc-comment": "2: `/--/` opens a doc comment",
    "cheat-plain-string": '3: `"{"` in a plain string',
    "cheat-glued-numeral": "4: `1set_option`, `2run_cmd`",
    "cheat-glued-char": "4: `'b'run_cmd`",
    "cheat-letterlike-ident": "5: `℘'\"'x\"`",
}
PAYLOAD_WORDS = ("skipKernelTC", "run_cmd")


def by_id() -> dict:
    return {c.id: c for c in builtin("4.24")}


def repl_args(tmp_path) -> list[str]:
    rules = write_rules(tmp_path / "rules.json")
    return ["--sandbox", "none", "--repl", shlex.join([sys.executable, str(FAKE_REPL), "script",
                                                       str(rules)])]  # fmt: skip


def test_jsonl_mode_refuses_classes_1_to_5_and_accepts_renamed_hypotheses(tmp_path) -> None:
    canaries = by_id()
    ids = [*CLASSES, "honest-renamed-hypothesis"]
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(
            json.dumps(
                {
                    "id": cid,
                    "name": canaries[cid].item.name,
                    "header": canaries[cid].item.header,
                    "formal_statement": canaries[cid].item.formal_statement,
                    "proof": canaries[cid].item.proof,
                },
                ensure_ascii=False,
            )
            + "\n"
            for cid in ids
        )
    )
    out = tmp_path / "out.jsonl"
    result = run_prover("check", "--jsonl", str(items), "--out", str(out), *repl_args(tmp_path))
    assert result.returncode == 0, result.stderr
    verdicts = {v["id"]: v for v in map(json.loads, out.read_text().splitlines())}
    assert set(verdicts) == set(ids)
    for cid, what in CLASSES.items():
        verdict = verdicts[cid]
        assert (verdict["accepted"], verdict["reason"]) == (False, "banned"), (what, verdict)
        assert any(word in verdict["detail"] for word in PAYLOAD_WORDS), (what, verdict["detail"])
    renamed = verdicts["honest-renamed-hypothesis"]
    assert (renamed["accepted"], renamed["reason"]) == (True, "ok"), renamed
    assert f"{len(ids)} checked, 1 accepted" in result.stderr


def test_file_mode_scans_the_header_class_6(tmp_path) -> None:
    canary = by_id()["cheat-file-header"]
    lean = tmp_path / "cheat.lean"
    lean.write_text(canary.file)
    result = run_prover("check", str(lean), "--json", *repl_args(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    (verdict,) = json.loads(result.stdout)["theorems"]
    assert verdict["name"] == canary.theorem
    assert verdict["reason"] == "banned" and "skipKernelTC" in verdict["detail"], verdict


def test_file_mode_honest_file_with_the_same_header_shape_is_accepted(tmp_path) -> None:
    # control: the FILE-mode header is scanned, not refused wholesale
    lean = tmp_path / "fine.lean"
    lean.write_text(
        "import Mathlib\nset_option maxHeartbeats 400000\n\n"
        "theorem selftest_fine (n : ℕ) (h₀ : n % 4 = 3) : n % 2 = 1 := by\n  omega\n"
    )
    result = run_prover("check", str(lean), "--json", *repl_args(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    (verdict,) = json.loads(result.stdout)["theorems"]
    assert verdict["reason"] == "ok"
