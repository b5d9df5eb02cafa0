"""`prover check` as a user runs it: a real subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from prover.lean.sandbox import bwrap_probe

from conftest import python_ro_paths, run_prover

HEADER = "import Mathlib\n\nopen Real\n\n"
SORRY_WARNING = {
    "severity": "warning",
    "pos": {"line": 11, "column": 8},
    "endPos": {"line": 11, "column": 11},
    "data": "declaration uses 'sorry'",
}
FILE = (
    HEADER
    + """theorem good (a b : ℕ) : a + b = b + a := by
  omega

/-- a doc comment -/
lemma also_good : (2 : ℕ) + 2 = 4 := by norm_num

theorem bad : (1 : ℕ) = 2 := by
  sorry

example : True := trivial
"""
)


def run(args: list[str], env: dict | None = None, cwd: Path | None = None):
    return run_prover(*args, env=env, cwd=cwd)


def repl_arg(command) -> str:
    return shlex.join(command.argv)


def test_file_mode_json(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "demo.lean"
    lean.write_text(FILE)
    rules = [
        {
            "match": "theorem bad",
            "response": {
                "messages": [SORRY_WARNING],
                "sorries": [
                    {
                        "proofState": 0,
                        "pos": {"line": 12, "column": 2},
                        "endPos": {"line": 12, "column": 7},
                        "goal": "⊢ 1 = 2",
                    }
                ],
            },
            "axioms_by_name": {"bad": ["sorryAx"]},
        }
    ]
    result = run(
        [
            "check",
            str(lean),
            "--json",
            "--sandbox",
            "none",
            "--repl",
            repl_arg(fake_repl_script(rules)),
        ]
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON document
    assert report["file"] == str(lean) and report["accepted"] is False
    assert report["lean_version"] == "4.24.0"
    by_name = {v["name"]: v for v in report["theorems"]}
    assert list(by_name) == ["good", "also_good", "bad", "example (line 14)"]
    assert by_name["good"]["accepted"] and by_name["also_good"]["accepted"]
    assert by_name["good"]["messages"] == by_name["also_good"]["messages"] == []
    assert by_name["good"]["messages"] == by_name["also_good"]["messages"] == []
    assert by_name["bad"]["reason"] == "sorry"
    assert by_name["bad"]["messages"][0]["data"] == "declaration uses 'sorry'"
    example = by_name["example (line 14)"]
    # an example is judged on its axioms like a theorem (sent to Lean under a generated name)
    assert example["accepted"] and example["reason"] == "ok" and example["detail"] == ""
    assert example["axioms"] == ["Classical.choice", "Quot.sound", "propext"]


def test_file_mode_all_accepted_exits_zero(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "ok.lean"
    lean.write_text(HEADER + "theorem fine : (1 : ℕ) = 1 := rfl\n")
    result = run(["check", str(lean), "--sandbox", "none", "--repl", repl_arg(fake_repl_script())])
    assert result.returncode == 0, result.stderr
    assert "fine" in result.stdout and "accepted" in result.stdout


def test_file_mode_banned_construct(fake_repl_script, tmp_path) -> None:
    lean = tmp_path / "cheat.lean"
    lean.write_text(HEADER + "axiom cheat : False\n\ntheorem t : (1 : ℕ) = 2 := cheat.elim\n")
    result = run(
        ["check", str(lean), "--json", "--sandbox", "none", "--repl", repl_arg(fake_repl_script())]
    )
    assert result.returncode == 1
    (verdict,) = json.loads(result.stdout)["theorems"]
    assert verdict["reason"] == "banned" and "axiom" in verdict["detail"]


def test_file_mode_under_real_bwrap(fake_repl_script, tmp_path) -> None:
    ok, why = bwrap_probe()
    if not ok:
        pytest.skip(f"bubblewrap unusable here: {why}")
    lean = tmp_path / "ok.lean"
    lean.write_text(HEADER + "theorem fine : (1 : ℕ) = 1 := rfl\n")
    env = {"PROVER_SANDBOX_RO_PATHS": ":".join(python_ro_paths())}
    result = run(["check", str(lean), "--json", "--repl", repl_arg(fake_repl_script())], env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] is True


def items_file(tmp_path: Path, n: int = 4) -> Path:
    path = tmp_path / "items.jsonl"
    rows = [
        {
            "name": f"t{i}",
            "header": HEADER,
            "formal_statement": f"theorem t{i} : ({i} : ℕ) = {i} := by\n",
            "proof": "  rfl",
            "model": "x",
        }
        for i in range(n)
    ]
    if n > 1:
        rows[1]["proof"] = "  exact?"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_mode_writes_verdicts_and_resumes(fake_repl_script, tmp_path) -> None:
    items = items_file(tmp_path)
    out = tmp_path / "verdicts.jsonl"
    log = tmp_path / "requests.jsonl"
    repl = repl_arg(fake_repl_script())
    first = run(
        ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none", "--repl", repl],
        env={"FAKE_REPL_LOG": str(log)},
    )
    assert first.returncode == 0, first.stderr
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(v["name"] for v in verdicts) == ["t0", "t1", "t2", "t3"]
    for v in verdicts:
        assert set(v) >= {
            "name",
            "accepted",
            "reason",
            "axioms",
            "messages",
            "statement_rewritten",
            "time_s",
        }
    assert {v["name"]: v["reason"] for v in verdicts}["t1"] == "banned"
    assert "4 checked, 3 accepted" in first.stderr
    sent_before = log.read_text().count("theorem t")
    # Lose two verdicts (as if killed mid-run) and a torn half line; a re-run redoes only those.
    kept = out.read_text().splitlines()[:2]
    out.write_text("\n".join(kept) + '\n{"id": "torn')
    again = run(
        ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none", "--repl", repl],
        env={"FAKE_REPL_LOG": str(log)},
    )
    assert again.returncode == 0, again.stderr
    assert "2 checked" in again.stderr and "2 already in" in again.stderr
    names = [
        json.loads(line)["name"]
        for line in out.read_text().splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert sorted(names) == ["t0", "t1", "t2", "t3"]
    assert log.read_text().count("theorem t") - sent_before <= 2


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_full_disk_under_out_is_one_line_naming_the_file(fake_repl_script, tmp_path) -> None:
    items = items_file(tmp_path, 2)
    args = ["check", "--jsonl", str(items), "--sandbox", "none"]
    args += ["--repl", repl_arg(fake_repl_script())]
    full = run([*args, "--out", "/dev/full"])  # every write: ENOSPC
    assert full.returncode == 2
    assert one_line(full.stderr) == (
        "prover: /dev/full: cannot write verdicts (No space left on device)"
    )
    with open("/dev/full", "w") as stdout:  # verdicts to a full standard output
        piped = subprocess.run([sys.executable, "-m", "prover", *args], stdout=stdout,
                               stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    assert piped.returncode == 2
    assert (
        one_line(piped.stderr) == "prover: stdout: cannot write verdicts (No space left on device)"
    )
    lean = tmp_path / "demo.lean"
    lean.write_text(FILE)
    for report in ([], ["--json"]):  # FILE mode's table or JSON to a full standard output
        with open("/dev/full", "w") as stdout:
            shown = subprocess.run([sys.executable, "-m", "prover", "check", str(lean), *report,
                                    *args[3:]], stdout=stdout, stderr=subprocess.PIPE,
                                   text=True, timeout=120)  # fmt: skip
        assert shown.returncode == 2
        assert one_line(shown.stderr) == (
            "prover: stdout: cannot write the report (No space left on device)"
        )


def test_a_torn_last_line_is_cut_said_and_its_record_checked_again(
    fake_repl_script, tmp_path
) -> None:
    items = items_file(tmp_path, 3)
    out = tmp_path / "verdicts.jsonl"
    args = ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none"]
    args += ["--repl", repl_arg(fake_repl_script())]
    assert run(args).returncode == 0
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]  # a write cut short by a full disk or a kill
    out.write_bytes(b"".join(lines[:-1]) + torn)
    again = run(args)
    assert again.returncode == 0, again.stderr
    cut, summary = again.stderr.strip().splitlines()
    assert cut == (
        f"prover check: {out}: cut a torn last line ({len(torn)} bytes, from an interrupted "
        "write); its record is checked again"
    )
    assert "1 checked" in summary and "2 already in" in summary
    repaired = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole
    assert [v["id"] for v in repaired] == [json.loads(line)["id"] for line in lines]
    # a whole verdict that only lacks its newline is kept, not redone
    out.write_bytes(out.read_bytes()[:-1])
    third = run(args)
    assert third.returncode == 0 and "cut a torn" not in third.stderr
    assert "0 checked" in third.stderr and "3 already in" in third.stderr
    assert out.read_bytes().endswith(b"}\n") and len(out.read_text().splitlines()) == 3


def test_jsonl_to_stdout(fake_repl_script, tmp_path) -> None:
    result = run(
        [
            "check",
            "--jsonl",
            str(items_file(tmp_path, 2)),
            "--sandbox",
            "none",
            "--repl",
            repl_arg(fake_repl_script()),
        ]
    )
    assert result.returncode == 0
    assert len([json.loads(line) for line in result.stdout.splitlines()]) == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("latin1", "not UTF-8"),
        ("no_theorem", "no theorem"),
        ("both", "either FILE or --jsonl"),
        ("no_repl", "no Lean REPL found"),
        ("bad_sandbox", "unknown sandbox"),
        ("docker_down", "--sandbox docker"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fake_repl_script, tmp_path, setup, message) -> None:
    repl = repl_arg(fake_repl_script())
    lean = tmp_path / "a.lean"
    lean.write_text(HEADER + "theorem t : True := trivial\n")
    items = tmp_path / "items.jsonl"
    args = ["check", str(lean), "--sandbox", "none", "--repl", repl]
    env = {}
    if setup == "missing":
        args[1] = str(tmp_path / "nope.lean")
    elif setup == "latin1":
        lean.write_bytes("theorem caf\xe9 : True := trivial\n".encode("latin-1"))
    elif setup == "no_theorem":
        lean.write_text(HEADER + "def x := 1\n")
    elif setup == "both":
        args = ["check", str(lean), "--jsonl", str(items), "--sandbox", "none"]
    elif setup == "no_repl":
        args = ["check", str(lean), "--sandbox", "none"]
        env = {"PROVER_REPL": "", "PATH": "/usr/bin:/bin"}
    elif setup == "bad_sandbox":
        args = ["check", str(lean), "--sandbox", "chroot", "--repl", repl]
    elif setup == "docker_down":
        args = ["check", str(lean), "--sandbox", "docker", "--repl", repl]
        env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = run(args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_help_says_none_is_for_trusted_input() -> None:
    result = run(["check", "--help"], env={"COLUMNS": "200"})
    assert result.returncode == 0
    assert "trusted input only" in result.stdout


def test_equal_samples_are_separate_records_and_ids_must_be_unique(fake_repl_script, tmp_path):
    repl = repl_arg(fake_repl_script())
    row = {
        "name": "t",
        "header": HEADER,
        "formal_statement": "theorem t : (1 : ℕ) = 1 := by\n",
        "proof": "  rfl -- \u2028 a line separator inside a JSON string",
    }
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(row, ensure_ascii=False) for _ in range(3)) + "\n")
    out = tmp_path / "out.jsonl"
    result = run(
        ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none", "--repl", repl]
    )
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 3  # k equal samples count k times
    items.write_text("\n".join(json.dumps({**row, "id": "p1"}) for _ in range(2)) + "\n")
    dup = run(["check", "--jsonl", str(items), "--sandbox", "none", "--repl", repl])
    assert dup.returncode == 2 and "id 'p1' already used on line 1" in dup.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jsonl", "ITEMS", "--json"], "--json is for FILE mode"),
        (["FILE", "--out", "x.jsonl"], "--out is for --jsonl mode"),
        (["--jsonl", "ITEMS", "--out", "DIR"], "cannot write verdicts"),
    ],
)
def test_option_misuse_is_one_line(fake_repl_script, tmp_path, args, message) -> None:
    lean = tmp_path / "a.lean"
    lean.write_text(HEADER + "theorem t : True := trivial\n")
    items = items_file(tmp_path, 1)
    subs = {"FILE": str(lean), "ITEMS": str(items), "DIR": str(tmp_path)}
    argv = [
        "check",
        *(subs.get(a, a) for a in args),
        "--sandbox",
        "none",
        "--repl",
        repl_arg(fake_repl_script()),
    ]
    result = run(argv)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_sigterm_keeps_verdicts_and_leaves_no_repl(fake_repl_script, tmp_path) -> None:
    import signal
    import time

    items = tmp_path / "items.jsonl"
    rows = [
        {
            "name": f"t{i}",
            "header": HEADER,
            "formal_statement": f"theorem t{i} : ({i} : ℕ) = {i} := by\n",
            "proof": "  rfl" + (" -- HANG" if i else ""),
        }
        for i in range(3)
    ]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    rules = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    marker = str(rules.argv[-1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prover",
            "check",
            "--jsonl",
            str(items),
            "--out",
            str(out),
            "--sandbox",
            "none",
            "--workers",
            "2",
            "--repl",
            repl_arg(rules),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out.exists() and out.read_text().strip()):
        time.sleep(0.2)
    time.sleep(1.0)  # the hanging checks are in flight
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == ["t0"]
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""
