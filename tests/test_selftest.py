"""`prover selftest` through the real CLI. The Lean side is the FakeRepl double in script mode,
answering each canary as real Lean would (tests/doubles/selftest_lean.py: scripted, not
recorded); the image build's `prover selftest` is where real Lean is checked."""

from __future__ import annotations

import json
import shlex
import sys
from importlib import resources
from pathlib import Path

import pytest

from prover.lean.canaries import SUPPORTED_VERSIONS, builtin, canaries, redteam_entries

from conftest import FAKE_REPL, ROOT, run_prover
from doubles.selftest_lean import PAYLOAD_ANSWER, write_rules
from serving import running_server


def double(rules: Path) -> str:
    return shlex.join([sys.executable, str(FAKE_REPL), "script", str(rules)])


def selftest(*args: str, rules: Path | None = None):
    repl = ["--repl", double(rules)] if rules is not None else []
    return run_prover("selftest", "--sandbox", "none", "--workers", "2", *repl, *args)


def rows_of(result) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(result.stdout)["rows"]}


def test_every_class_of_issue_10_has_a_canary() -> None:
    classes = {c.cls for c in builtin("4.24")}
    for number in range(1, 7):
        assert any(cls.startswith(f"cheat {number}:") for cls in classes), number
    ids = {c.id for c in builtin("4.24")}
    assert {"honest-renamed-hypothesis", "honest-classical", "classic-native-decide"} <= ids
    for version in SUPPORTED_VERSIONS:
        # the whole red-team corpus rides along, each entry with its expected verdict
        assert len(canaries(version)) == len(builtin(version)) + len(redteam_entries())


def test_redteam_corpus_ships_as_package_data() -> None:
    packaged = resources.files("prover.lean.canaries").joinpath("redteam.jsonl")
    assert packaged.is_file() and len(redteam_entries()) >= 80
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"prover.lean.canaries" = ["redteam.jsonl"]' in pyproject


def test_all_canaries_get_their_verdict(tmp_path) -> None:
    result = selftest(rules=write_rules(tmp_path / "rules.json"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    for name in ("honest-renamed-hypothesis", "cheat-glued-char", "redteam-admit"):
        assert name in result.stdout
    assert "MISMATCH" not in result.stdout
    assert ", 0 mismatched," in result.stdout and "text scan on" in result.stdout


def test_a_wrongly_accepted_cheat_is_named_and_fails(tmp_path) -> None:
    # the double now says native_decide used only the standard axioms: Lean lied
    lie = {"response": {}, "axioms": ["propext", "Classical.choice", "Quot.sound"]}
    rules = write_rules(tmp_path / "rules.json", {"classic-native-decide": lie})
    result = selftest("--json", rules=rules)
    assert result.returncode == 1, result.stderr
    rows = rows_of(result)
    wrong = {k: (r["expected"], r["got"]) for k, r in rows.items() if r["result"] == "MISMATCH"}
    assert wrong == {"classic-native-decide": ("native", "ok")}
    table = selftest(rules=rules)
    assert table.returncode == 1
    line = next(ln for ln in table.stdout.splitlines() if "classic-native-decide" in ln)
    assert "MISMATCH" in line and "1 mismatched" in table.stdout


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_lean_only_rejects_every_cheat_without_the_scan(tmp_path) -> None:
    result = selftest("--lean-only", "--json", rules=write_rules(tmp_path / "rules.json"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    document = json.loads(result.stdout)
    rows = {r["id"]: r for r in document["rows"]}
    assert document["lean_only"] is True and document["replay"] is True
    for key in ("block-comment", "doc-comment", "plain-string", "glued-numeral", "glued-char",
                "letterlike-ident", "file-header"):  # fmt: skip
        assert rows[f"cheat-{key}"]["got"] == "replay", key
    assert rows["classic-axiom"]["got"] == "axiom"
    assert rows["classic-instance"]["got"] == "error"
    skipped = rows["classic-exact-question"]
    assert skipped["result"] == "n/a" and "not applicable in --lean-only" in skipped["note"]
    # printed, with its reason, in the table too
    table = selftest("--lean-only", rules=write_rules(tmp_path / "rules2.json"))
    assert table.returncode == 0
    assert "not applicable in --lean-only" in table.stdout


def test_lean_only_fails_when_the_replay_accepts_a_payload(tmp_path) -> None:
    unchecked = {k: v for k, v in PAYLOAD_ANSWER.items() if k != "replay_error"}
    rules = write_rules(tmp_path / "rules.json", {"cheat-plain-string": unchecked})
    result = selftest("--lean-only", "--json", rules=rules)
    assert result.returncode == 1
    mismatched = {k for k, r in rows_of(result).items() if r["result"] == "MISMATCH"}
    assert mismatched == {"cheat-plain-string"}


def test_lean_only_on_a_server_that_cannot_replay_says_so(tmp_path) -> None:
    from prover.lean.pool import ReplPool, VerifierConfig
    from prover.lean.sandbox import ReplCommand

    from conftest import plain_factory

    command = ReplCommand((sys.executable, str(FAKE_REPL), "script",
                           str(write_rules(tmp_path / "rules.json"))))  # fmt: skip
    # a server that checks but never replays, as a Kimina Lean Server does
    factory = lambda: ReplPool(  # noqa: E731
        VerifierConfig(workers=2, timeout=20, replay=False),
        transport_factory=plain_factory(command),
    )
    with running_server(factory) as url:
        result = run_prover("selftest", "--verifier", url, "--lean-only", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    document = json.loads(result.stdout)
    assert document["replay"] is False and "cannot replay" in document["summary"]
    rows = {r["id"]: r for r in document["rows"]}
    assert rows["cheat-block-comment"]["result"] == "n/a"
    assert "cannot replay" in rows["cheat-block-comment"]["note"]
    assert rows["classic-axiom"]["got"] == "axiom" and rows["classic-axiom"]["result"] == "ok"
    # the remote API has no tactic mode: those checks do not apply, and say why
    tactic = document["tactic"]
    assert tactic["heartbeats"] == "n/a" and "no tactic mode" in tactic["skipped"]
    assert {r["result"] for r in tactic["rows"]} == {"n/a"}
    assert "tactic mode: not applicable" in document["summary"]


def test_a_repl_that_cannot_start_is_exit_2_in_one_line(tmp_path) -> None:
    result = run_prover("selftest", "--sandbox", "none", "--repl", str(tmp_path / "no-repl"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no verdict about any canary" in result.stderr and "Traceback" not in result.stderr


def test_a_repl_that_dies_at_once_is_exit_2(tmp_path) -> None:
    dies = shlex.join([sys.executable, "-c", "import sys; sys.exit(3)"])
    result = run_prover("selftest", "--sandbox", "none", "--repl", dies, "--timeout", "10")
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no verdict about any canary" in result.stderr


def test_a_header_that_does_not_elaborate_is_exit_2(tmp_path) -> None:
    rules = tmp_path / "rules.json"
    error = {"severity": "error", "pos": {"line": 1, "column": 0}, "endPos": None,
             "data": "unknown module prefix 'Mathlib'"}  # fmt: skip
    rules.write_text(json.dumps({"rules": [{"match": "import Mathlib",
                                            "response": {"messages": [error]}}]}))  # fmt: skip
    result = selftest(rules=rules)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "header does not elaborate" in result.stderr and "unknown module" in result.stderr


def test_unreachable_server_is_exit_2() -> None:
    result = run_prover("selftest", "--verifier", "http://127.0.0.1:9", "--timeout", "1")
    assert result.returncode == 2
    assert "no verdict about any canary" in result.stderr


def test_unknown_lean_version_is_exit_2(tmp_path) -> None:
    result = selftest("--lean-version", "4.3", rules=write_rules(tmp_path / "rules.json"))
    assert result.returncode == 2 and "no canaries for Lean 4.3" in result.stderr


@pytest.mark.parametrize("version", ["4.9", "v4.27.0"])
def test_other_versions_run_their_own_header(tmp_path, version) -> None:
    result = selftest("--lean-version", version, "--json",
                      rules=write_rules(tmp_path / "rules.json"))  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    document = json.loads(result.stdout)
    assert document["canary_version"] == version.removeprefix("v").removesuffix(".0")
    assert "note: the verifier runs Lean 4.24.0" in result.stderr


@pytest.mark.slow
def test_a_built_wheel_ships_the_corpus(tmp_path) -> None:
    """`pip install .` (not editable) installs from a wheel: the corpus must be inside it."""
    import shutil
    import subprocess
    import zipfile

    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("prover", "harness", "training"):
        shutil.copytree(ROOT / part, source / part, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("prover-*.whl")
    assert "prover/lean/canaries/redteam.jsonl" in zipfile.ZipFile(wheel).namelist()
