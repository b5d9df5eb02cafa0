"""FILE mode when one theorem hangs or kills Lean: the file is judged again declaration by
declaration, so each verdict is about its own theorem. Lean is the scripted REPL double
(tests/doubles/fake_repl.py), run through the real CLI."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from prover.detail_text import CELL_LIMIT, detail_cell
from prover.errors import MachineryFailure
from prover.lean.file_by_declaration import pieces
from prover.lean.filecheck import check_file
from prover.lean.pool import ReplPool, VerifierConfig

from conftest import plain_factory, run_prover

HEADER = "import Mathlib\n\n"
STANDARD = ["Classical.choice", "Quot.sound", "propext"]
# what a REPL writes before dying when its toolchain is broken: the last line says why
LAKE_STDERR = "\n".join(
    ["warning: manifest out of date: git revision of dependency 'mathlib' changed"] * 3
    + ["error: could not fetch https://github.com/leanprover-community/mathlib4 (offline)"]
    + ["lake: error: no such package 'Mathlib'"]
)


def check(tmp_path: Path, command, text: str, *extra: str) -> tuple[dict, list[dict], str]:
    """The JSON report of `prover check FILE --json`, Lean's requests, and stderr."""
    lean = tmp_path / "file.lean"
    lean.write_text(text)
    log = tmp_path / "requests.jsonl"
    log.unlink(missing_ok=True)
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--timeout", "2",
                        "--repl", shlex.join(command.argv), *extra,
                        env={"FAKE_REPL_LOG": str(log)})  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    return json.loads(result.stdout), requests, result.stderr


def by_name(report: dict) -> dict[str, dict]:
    return {v["name"]: v for v in report["theorems"]}


def commands(requests: list[dict]) -> list[str]:
    return [r["cmd"] for r in requests if "cmd" in r]


def unknown_identifier(name: str) -> dict:
    return {
        "match": f"exact {name}",
        "anchored": True,  # the message stands on the line of `match`, as Lean's would
        "response": {
            "messages": [
                {
                    "severity": "error",
                    "pos": {"line": 1, "column": 8},
                    "endPos": {"line": 1, "column": 12},
                    "data": f"unknown identifier '{name}'",
                }
            ]
        },
    }


HANGING_FILE = HEADER + (
    "theorem good1 : (1 : ℕ) = 1 := rfl\n"  # line 3
    "\n"
    "theorem slow : (2 : ℕ) = 2 := by\n"  # line 5
    "  rfl -- HANG\n"
    "\n"
    "def slowdef : ℕ := 3 -- HANG\n"  # line 8
    "\n"
    "example : True := trivial\n"  # line 10
    "\n"
    "theorem uses_slow : (2 : ℕ) = 2 := by\n"  # line 12
    "  exact slow\n"
    "\n"
    "theorem searching : (4 : ℕ) = 4 := by\n"  # line 15
    "  exact?\n"
    "\n"
    "theorem good2 : (3 : ℕ) = 3 := rfl\n"  # line 18
)


@pytest.mark.slow
def test_a_hanging_theorem_times_out_alone(fake_repl_script, tmp_path) -> None:
    rules = [{"match": "HANG", "sleep_s": 1000}, unknown_identifier("slow")]
    report, requests, stderr = check(tmp_path, fake_repl_script(rules), HANGING_FILE)
    assert "got no answer (timeout): judging each declaration on its own" in stderr
    found = by_name(report)
    assert list(found) == ["good1", "slow", "example (line 10)", "uses_slow", "searching", "good2"]
    # the whole file got no answer: that is said, and then each declaration has its own verdict
    assert report["per_declaration"] == "timeout: no answer within 2 s"
    assert found["slow"]["reason"] == "timeout" and not found["slow"]["accepted"]
    for good in ("good1", "example (line 10)", "good2"):
        assert found[good]["accepted"] and found[good]["reason"] == "ok", found[good]
        assert found[good]["axioms"] == STANDARD and found[good]["replayed"], found[good]
    # Lean's own error for the theorem that uses the one that hung, at its own line
    uses = found["uses_slow"]
    assert uses["reason"] == "error" and "unknown identifier 'slow'" in uses["messages"][0]["data"]
    assert uses["messages"][0]["pos"]["line"] == 13
    assert "`slow`" in uses["detail"] and "did not elaborate" in uses["detail"]
    assert found["searching"]["reason"] == "banned"  # the text scan still runs first
    # the hanging `def` is charged to the file, not to a theorem
    (unjudged,) = report["file_messages"]
    assert unjudged["severity"] == "error" and unjudged["pos"]["line"] == 8
    assert "timeout" in unjudged["data"]
    assert report["accepted"] is False
    sent = commands(requests)
    whole = [c for c in sent if "theorem good1" in c and "theorem good2" in c]
    assert len(whole) == 1  # the whole file once, then each piece on its own
    alone = [c for c in sent if "theorem good2" in c and "theorem good1" not in c]
    assert alone and alone[0].startswith("\n" * 17)  # at the file's own line (18)
    examples = [c for c in sent if "noncomputable def prover_example_L10_" in c]
    assert len(examples) == 2  # an example still goes to Lean as a named def
    asked = [c for c in sent if c.startswith("#print axioms")][-1]
    assert "_root_.good2" in asked and "_root_.slow" not in asked  # no answer: not asked
    assert any("unpickleEnvFrom" in r for r in requests)  # the kernel replay still runs


def test_a_crashing_theorem_is_charged_alone(fake_repl_script, tmp_path) -> None:
    text = HEADER + (
        "namespace Foo\n"
        "\n"
        "theorem good1 : (1 : ℕ) = 1 := rfl\n"
        "\n"
        "theorem boom : (2 : ℕ) = 2 := by\n"
        "  rfl -- CRASH\n"
        "\n"
        "theorem good2 : (3 : ℕ) = 3 := rfl\n"
        "\n"
        "end Foo\n"
    )
    rules = [{"match": "CRASH", "exit": 1, "stderr": LAKE_STDERR}]
    report, requests, _ = check(tmp_path, fake_repl_script(rules), text)
    found = by_name(report)
    assert report["per_declaration"].startswith("crash: REPL died")
    assert found["Foo.good1"]["accepted"] and found["Foo.good2"]["accepted"]
    assert found["Foo.good1"]["replayed"] and found["Foo.good2"]["replayed"]
    assert found["Foo.boom"]["reason"] == "crash"
    assert "lake: error: no such package 'Mathlib'" in found["Foo.boom"]["detail"]
    assert report["file_messages"] == [] and report["accepted"] is False
    sent = commands(requests)
    at = next(k for k, c in enumerate(sent) if "CRASH" in c and "good1" not in c)
    # a fresh process: header, a known-good check, what finished before the crash again,
    # then the rest
    after = [c.strip() for c in sent[at + 1 :]]
    assert after[:5] == [
        "import Mathlib",
        "theorem prover_canary_check : (2 : Nat) + 2 = 4 := by rfl",
        "namespace Foo",
        "theorem good1 : (1 : ℕ) = 1 := rfl",
        "theorem good2 : (3 : ℕ) = 3 := rfl",
    ], after
    assert after[5] == "end Foo"


def test_a_lean_that_dies_on_everything_is_machinery(fake_repl_script, tmp_path) -> None:
    """Every declaration crashing is no verdict on them: a known-good check crashes too."""
    lean = tmp_path / "file.lean"
    lean.write_text(HEADER + "theorem a : True := trivial\n\ntheorem b : True := trivial\n")
    rules = [{"match": ":=", "exit": 1, "stderr": "Segmentation fault"}]
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--timeout", "2",
                        "--repl", shlex.join(fake_repl_script(rules).argv))  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    *progress, line = result.stderr.strip().splitlines()  # the one line that says why, last
    assert progress == [
        "prover: the file as one command got no answer (crash): judging each declaration on its own"
    ]
    assert "known-good check failed too" in line and "Segmentation fault" in line


def test_the_file_table_shows_the_end_of_a_crash_detail(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "file.lean"
    lean.write_text(
        HEADER + "theorem good : True := trivial\n\ntheorem boom : True := trivial -- CRASH\n"
    )
    rules = [{"match": "CRASH", "exit": 1, "stderr": LAKE_STDERR}]
    result = run_prover("check", str(lean), "--sandbox", "none", "--timeout", "2",
                        "--repl", shlex.join(fake_repl_script(rules).argv))  # fmt: skip
    assert result.returncode == 1, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    details = " ".join(row.split("│")[-2].strip() for row in rows)
    assert "lake: error: no such package 'Mathlib'" in details.replace("  ", " "), result.stdout
    assert "each declaration was then judged on its own" in " ".join(result.stdout.split())


def test_a_file_that_answers_is_sent_once(fake_repl_script, tmp_path) -> None:
    report, requests, _ = check(
        tmp_path,
        fake_repl_script(),
        HEADER + "theorem a : True := trivial\n\ntheorem b : True := trivial\n",
    )
    assert report["accepted"] and report["per_declaration"] is None
    assert len([c for c in commands(requests) if "theorem" in c]) == 1


# -- what FILE mode does not turn into verdicts -------------------------------------------


def pool_for(command, timeout: float = 2.0) -> ReplPool:
    config = VerifierConfig(workers=1, timeout=timeout, sandbox="none")
    return ReplPool(config, transport_factory=plain_factory(command))


def test_a_repl_that_cannot_start_is_no_verdict(tmp_path) -> None:
    """Through the CLI: exit 2 and one line, never a `crash` verdict for every theorem."""
    lean = tmp_path / "file.lean"
    lean.write_text(HEADER + "theorem a : True := trivial\n\ntheorem b : True := trivial\n")
    repl = "sh -c 'echo \"lake: error: no such package Mathlib\" >&2; exit 1'"
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl", repl)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "lake: error: no such package Mathlib" in line


def test_a_header_that_cannot_start_is_machinery(fake_repl_script, monkeypatch) -> None:
    with pool_for(fake_repl_script()) as pool:

        def broken(header: str):
            raise MachineryFailure("the REPL cannot start: exit status 1")

        monkeypatch.setattr(pool, "repl_for", broken)
        with pytest.raises(MachineryFailure, match="cannot start"):
            check_file(pool, "f.lean", HEADER + "theorem a : True := trivial\n")


def test_machinery_failing_during_the_second_try_stops_it(fake_repl_script, monkeypatch) -> None:
    rules = [{"match": "CRASH", "exit": 1}]
    with pool_for(fake_repl_script(rules)) as pool:
        real = pool.repl_for
        calls = []

        def second_fails(header: str):
            calls.append(header)
            if len(calls) > 1:
                raise MachineryFailure("retries spent: the REPL cannot start")
            return real(header)

        monkeypatch.setattr(pool, "repl_for", second_fails)
        text = HEADER + "theorem a : True := trivial\n\ntheorem b : True := trivial -- CRASH\n"
        with pytest.raises(MachineryFailure, match="retries spent"):
            check_file(pool, "f.lean", text)
        assert len(calls) == 2


# -- the pieces sent ----------------------------------------------------------------------


def test_pieces_cover_the_text_and_keep_blocks_whole() -> None:
    rest = (
        "-- a comment before anything\n"  # line 3 of the file
        "theorem a : True := trivial\n"
        "\n"
        "mutual\n"  # line 6
        "theorem even_t : True := trivial\n"
        "theorem odd_t : True := trivial\n"
        "end\n"
        "\n"
        "inductive Color where\n"  # line 11
        "  | red | green\n"
        "deriving Repr\n"
        "\n"
        "deriving instance BEq for Color\n"  # line 15
        "\n"
        "set_option maxHeartbeats 400 in\n"  # line 17
        "theorem b : True := trivial\n"
    )
    found = pieces(rest, offset=2)
    assert "".join(p.text for p in found) == rest  # every character, once
    assert [(p.first_line, p.last_line) for p in found] == [
        (3, 4), (6, 9), (11, 13), (15, 15), (17, 18)
    ]  # fmt: skip
    assert found[1].text.startswith("mutual") and found[1].text.rstrip().endswith("end")


# -- a long detail in a table cell --------------------------------------------------------


def test_a_long_detail_keeps_its_end() -> None:
    detail = f"REPL died (end of output; exit status 1; stderr: {LAKE_STDERR})"
    assert len(detail) > 300
    cell = detail_cell(detail)
    assert len(cell) == CELL_LIMIT
    assert cell.startswith("REPL died (end of output; exit status 1;")
    assert cell.endswith("lake: error: no such package 'Mathlib')")
    assert detail_cell("no answer within 2 s") == "no answer within 2 s"
    assert detail_cell("line one\n  line two") == "line one line two"
