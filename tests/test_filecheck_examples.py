"""FILE mode (`prover check FILE.lean`): examples judged on their axioms and replay, banned
commands charged to the whole file. Lean is the scripted REPL double (tests/doubles)."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from prover.lean.filecheck import EXAMPLE_PREFIX, _name_examples, judged_declarations
from prover.lean.lexer import tokenize
from prover.lean.protocol import Pos

from conftest import run_prover

HEADER = "import Mathlib\n\n"


def check(tmp_path: Path, command, text: str, *extra: str) -> tuple[dict, list[dict]]:
    """The JSON report of `prover check` on `text`, and the requests Lean received."""
    lean = tmp_path / "file.lean"
    lean.write_text(text)
    log = tmp_path / "requests.jsonl"
    log.unlink(missing_ok=True)
    result = run_prover("check", str(lean), "--json", "--sandbox", "none",
                        "--repl", shlex.join(command.argv), *extra,
                        env={"FAKE_REPL_LOG": str(log)})  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    requests = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return json.loads(result.stdout), requests


def by_name(report: dict) -> dict[str, dict]:
    return {v["name"]: v for v in report["theorems"]}


def file_command(requests: list[dict]) -> str:
    """The request that sent the file's declarations."""
    return next(r["cmd"] for r in requests if "cmd" in r and EXAMPLE_PREFIX in r["cmd"]
                and "#print axioms" not in r["cmd"])  # fmt: skip


def test_example_with_helper_by_blocks(fake_repl_script, tmp_path) -> None:
    text = HEADER + (
        "example (a b : ℕ) (h : a = b) : b = a := by\n"
        "  have h' : a = b := by\n"
        "    exact h\n"
        "  have : b = b := by rfl\n"
        "  exact h'.symm\n"
        "\n"
        "example : (2 : ℕ) + 2 = 4 := by\n"
        "  have h : (2 : ℕ) + 2 = 4 := by native_decide\n"
        "  exact h\n"
    )
    report, requests = check(tmp_path, fake_repl_script(), text)
    found = by_name(report)
    assert list(found) == ["example (line 3)", "example (line 9)"]
    honest, native = found["example (line 3)"], found["example (line 9)"]
    assert honest["accepted"] and honest["replayed"], honest
    assert honest["axioms"] == ["Classical.choice", "Quot.sound", "propext"]
    assert not native["accepted"] and native["reason"] == "native", native
    assert not report["accepted"]
    sent = file_command(requests)
    # the keyword token became a named def; the helper `by` blocks are untouched
    assert sent.count("noncomputable def prover_example_L") == 2
    assert not [t for t in tokenize(sent) if t.kind == "ident" and t.text == "example"]
    assert "  have h' : a = b := by\n    exact h\n" in sent
    queried = [r["cmd"] for r in requests if r.get("cmd", "").startswith("#print axioms")]
    assert (
        len(re.findall(r"#print axioms _root_\.prover_example_L3_[0-9a-f]{8}\b", queried[0])) == 1
    )


def test_example_inside_a_namespace(fake_repl_script, tmp_path) -> None:
    text = HEADER + (
        "namespace Foo.Bar\n\ntheorem t : True := trivial\n\nexample : True := t\n\nend Foo.Bar\n"
    )
    report, requests = check(tmp_path, fake_repl_script(), text)
    assert report["accepted"], report
    assert by_name(report)["example (line 7)"]["replayed"]
    queried = next(r["cmd"] for r in requests if r.get("cmd", "").startswith("#print axioms"))
    assert "#print axioms _root_.Foo.Bar.t\n" in queried
    assert re.search(r"#print axioms _root_\.Foo\.Bar\.prover_example_L7_[0-9a-f]{8}$", queried)


def test_two_examples_on_one_line(fake_repl_script, tmp_path) -> None:
    line = "example : True := trivial  example : (2 : ℕ) + 2 = 4 := by native_decide\n"
    report, requests = check(tmp_path, fake_repl_script(), HEADER + line)
    found = by_name(report)
    assert list(found) == ["example (line 3, column 1)", "example (line 3, column 28)"]
    assert found["example (line 3, column 1)"]["accepted"]
    assert found["example (line 3, column 28)"]["reason"] == "native"
    assert not report["accepted"]
    assert file_command(requests).count("noncomputable def prover_example_L3_") == 2


def test_theorem_that_does_not_start_its_line_is_judged(fake_repl_script, tmp_path) -> None:
    # Lean starts a command where the previous one ends: `b` is a theorem of the file
    text = HEADER + "theorem a : True := trivial theorem b : (2 : ℕ) + 2 = 4 := by native_decide\n"
    report, _ = check(tmp_path, fake_repl_script(), text)
    found = by_name(report)
    assert list(found) == ["a", "b"]
    assert found["a"]["accepted"] and found["b"]["reason"] == "native"


def test_modifiers_before_example(fake_repl_script, tmp_path) -> None:
    text = HEADER + (
        "private example : True := trivial\nnoncomputable example : ℕ := Classical.choice ⟨1⟩\n"
    )
    report, requests = check(tmp_path, fake_repl_script(), text)
    assert report["accepted"], report
    sent = file_command(requests)
    assert "private noncomputable def prover_example_L3_" in sent
    # `noncomputable` is never written twice (a parse error)
    assert "noncomputable noncomputable" not in sent
    assert "noncomputable def prover_example_L4_" in sent


def test_the_users_file_is_never_modified(fake_repl_script, tmp_path) -> None:
    text = HEADER + "example : True := trivial\n\nexample : True := by\n  trivial\n"
    lean = tmp_path / "file.lean"
    lean.write_text(text)
    stamp = os.stat(lean).st_mtime_ns
    result = run_prover("check", str(lean), "--json", "--sandbox", "none",
                        "--repl", shlex.join(fake_repl_script().argv))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [v["replayed"] for v in json.loads(result.stdout)["theorems"]] == [True, True]
    assert lean.read_bytes() == text.encode() and os.stat(lean).st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir() if p.name != "rules-0.json"] == ["file.lean"]


def test_message_columns_after_the_example_keyword_are_the_files(
    fake_repl_script, tmp_path
) -> None:
    text = HEADER + "example : (1 : ℕ) = 2 := by simp\n"
    rest = text[len(HEADER) :]
    sent = _name_examples(rest, judged_declarations(rest), 2)
    replaced = sent.rest.split(":", 1)[0]  # `noncomputable def prover_example_L3_xxxxxxxx `
    simp_at = text.split("\n")[2].index("simp")
    sent_at = simp_at - len("example ") + len(replaced)  # where Lean sees `simp`
    error = {"severity": "error", "pos": {"line": 3, "column": sent_at},
             "endPos": {"line": 3, "column": sent_at + 4}, "data": "simp failed"}  # fmt: skip
    rules = [{"match": "simp", "response": {"messages": [error]}}]
    report, _ = check(tmp_path, fake_repl_script(rules), text)
    (verdict,) = report["theorems"]
    assert verdict["reason"] == "error"
    (message,) = verdict["messages"]
    assert message["pos"] == {"line": 3, "column": simp_at}
    assert message["endPos"] == {"line": 3, "column": simp_at + 4}


def test_columns_map_back_with_two_examples_on_a_line() -> None:
    rest = "example : True := trivial example : True := trivial\n"
    sent = _name_examples(rest, judged_declarations(rest), 0)
    second = sent.rest.index("noncomputable def", 1)
    after_second = second + len(sent.rest[second:].split(" :", 1)[0])
    assert sent.columns.column(Pos(1, after_second)) == Pos(1, rest.index(" :", 26))
    assert sent.columns.column(Pos(1, second + 5)) == Pos(1, 26)  # inside the name: keyword
    assert sent.columns.column(Pos(1, 3)) == Pos(1, 0)
    assert sent.columns.column(Pos(2, 3)) == Pos(2, 3)  # other lines: as they are


def test_search_tactic_bans_only_its_own_theorem(fake_repl_script, tmp_path) -> None:
    text = HEADER + ("theorem a : True := by exact?\n\ntheorem b : True := trivial\n")
    report, _ = check(tmp_path, fake_repl_script(), text, "--no-replay")
    found = by_name(report)
    assert found["a"]["reason"] == "banned" and "line 3" in found["a"]["detail"]
    assert found["b"]["accepted"]


def test_banned_command_bans_the_theorems_before_it_too(fake_repl_script, tmp_path) -> None:
    # meta code runs before the file's `#print axioms` and can change any theorem's answer
    text = HEADER + (
        "theorem a : True := trivial\n\n"
        "theorem b : True := by\n"
        "  trivial\n"
        '  run_cmd Lean.logInfo "hi"\n'
    )
    report, requests = check(tmp_path, fake_repl_script(), text, "--no-replay")
    found = by_name(report)
    assert found["b"]["detail"] == "`run_cmd` (runs unchecked meta code) at line 7"
    assert found["a"]["reason"] == "banned"
    assert "line 7" in found["a"]["detail"] and "whole file" in found["a"]["detail"]
    assert not any("theorem a" in r.get("cmd", "") for r in requests)  # Lean never ran it
