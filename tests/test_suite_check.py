"""`prover suite check` / `prover suite list` as a user runs them, against the FakeRepl double."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from benchmarks import data_dir
from harness.suite_check import check_suite, statement_command
from harness.suites import known_suites, load_suite
from prover.lean.pool import ReplPool, VerifierConfig

from conftest import plain_factory, run_prover
from serving import running_server

HEADER = "import Mathlib\nopen Real\n\n"
SHIPPED = {"PROVER_DATA": ""}  # no user data: suites read the data the package ships
WIDE = {"COLUMNS": "200"}  # rich wraps tables at 80 columns when stdout is not a terminal


def lean_error(data: str) -> dict:
    return {
        "severity": "error",
        "pos": {"line": 1, "column": 30},
        "endPos": {"line": 1, "column": 41},
        "data": data,
    }


def write_suite(path: Path, names: list[str], header: str = HEADER) -> Path:
    rows = [
        {
            "name": name,
            "split": "test",
            "header": header,
            "formal_statement": f"theorem {name} (n : ℕ) : n + 0 = n := by\n",
        }
        for name in names
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def check(suite: str | Path, command, *extra: str, env: dict | None = None):
    return run_prover(
        "suite",
        "check",
        str(suite),
        "--sandbox",
        "none",
        "--repl",
        shlex.join(command.argv),
        *extra,
        env={**WIDE, **(env or {})},
    )


RULES = [
    {
        "match": "theorem renamed",
        "response": {"messages": [lean_error("unknown identifier 'Nat.old'")]},
    },
    {
        "match": "theorem mismatch",
        "response": {"messages": [lean_error("type mismatch\n  h\nhas type\n  ℕ : Type")]},
    },
    {
        "match": "theorem linted",
        "response": {
            "messages": [
                {**lean_error("unused variable `n`"), "severity": "warning"},
                {**lean_error("declaration uses 'sorry'"), "severity": "warning"},
            ]
        },
    },
]
NAMES = ["good_a", "renamed", "good_b", "mismatch", "linted", "good_c"]


def test_failures_are_listed_with_their_first_error(fake_repl_script, tmp_path) -> None:
    suite = write_suite(tmp_path / "mini.jsonl", NAMES)
    result = check(suite, fake_repl_script(RULES), "--workers", "2")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "mini: 6 statements: 4 elaborate, 2 fail (2 error)"
    table = [line for line in lines if line.startswith("│")]
    assert len(table) == 2  # the failures only, in the suite's order
    assert "renamed" in table[0] and "unknown identifier 'Nat.old'" in table[0]
    assert "mismatch" in table[1] and "type mismatch h has type ℕ : Type" in table[1]
    assert not any(name in result.stdout for name in ("good_a", "good_b", "good_c"))
    assert "1 statement(s) elaborate with other warnings (first: linted" in result.stdout


def test_json_report(fake_repl_script, tmp_path) -> None:
    suite = write_suite(tmp_path / "mini.jsonl", NAMES)
    result = check(suite, fake_repl_script(RULES), "--workers", "2", "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)  # stdout is the one JSON document; the bar is on stderr
    assert (doc["total"], doc["elaborate"], doc["fail"]) == (6, 4, 2)
    assert doc["by_status"] == {"ok": 4, "error": 2, "timeout": 0, "memory": 0, "crash": 0}
    assert [r["name"] for r in doc["results"]] == NAMES
    by_name = {r["name"]: r for r in doc["results"]}
    assert by_name["mismatch"]["detail"] == "type mismatch h has type ℕ : Type"  # one line
    # the expected sorry warning is not listed; other warnings are, without failing
    assert by_name["linted"]["status"] == "ok"
    assert by_name["linted"]["warnings"] == ["unused variable `n`"]
    assert by_name["good_a"]["warnings"] == []
    assert doc["checker_lean_version"] == "4.24.0"
    assert doc["lean_version_warning"] == (  # a JSONL file states no Lean version
        "warning: suite mini states no Lean version: not compared with the checker's Lean v4.24.0"
    )


def test_all_elaborate_with_one_header_elaboration_per_process(fake_repl_script, tmp_path) -> None:
    suite = write_suite(tmp_path / "ok.jsonl", [f"t{i}" for i in range(8)])
    log = tmp_path / "requests.jsonl"
    result = check(suite, fake_repl_script(), "--workers", "2", env={"FAKE_REPL_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ok: 8 statements: 8 elaborate, 0 fail"]
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    headers = [r for r in requests if r["cmd"] == HEADER]
    assert 1 <= len(headers) <= 2  # per process, not per statement
    assert all("env" not in r for r in headers)  # a fresh environment, where imports go
    statements = sorted(r["cmd"] for r in requests if r["cmd"].startswith("theorem"))
    assert statements == [f"theorem t{i} (n : ℕ) : n + 0 = n := by sorry" for i in range(8)]
    assert all(r.get("env") is not None for r in requests if r["cmd"].startswith("theorem"))
    assert f"header elaborations: {len(headers)}" in result.stderr


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_timeouts_and_crashes_are_their_own_status(fake_repl_script, tmp_path) -> None:
    suite = write_suite(tmp_path / "mini.jsonl", ["good_a", "slow", "boom", "good_b"])
    rules = [{"match": "theorem slow", "sleep_s": 1000}, {"match": "theorem boom", "exit": 3}]
    result = check(suite, fake_repl_script(rules), "--workers", "2", "--timeout", "2", "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert {r["name"]: r["status"] for r in doc["results"]} == {
        "good_a": "ok",
        "slow": "timeout",
        "boom": "crash",
        "good_b": "ok",
    }
    assert doc["results"][1]["detail"] == "no answer within 2 s"
    text = check(suite, fake_repl_script(rules), "--workers", "2", "--timeout", "2")
    assert text.stdout.splitlines()[0] == (
        "mini: 4 statements: 2 elaborate, 2 fail (1 timeout, 1 crash)"
    )


def test_a_header_that_does_not_elaborate_fails_its_statements(fake_repl_script, tmp_path):
    good = write_suite(tmp_path / "a.jsonl", ["fine"]).read_text()
    bad = write_suite(tmp_path / "b.jsonl", ["lost_1", "lost_2"], header="import Gone\n\n")
    suite = tmp_path / "mixed.jsonl"
    suite.write_text(good + bad.read_text())
    rules = [
        {"match": "import Gone", "response": {"messages": [lean_error("unknown module Gone")]}}
    ]
    result = check(suite, fake_repl_script(rules), "--workers", "1", "--json")
    assert result.returncode == 1, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [(r["name"], r["status"]) for r in results] == [
        ("fine", "ok"),
        ("lost_1", "error"),
        ("lost_2", "error"),
    ]
    assert results[1]["detail"] == "header does not elaborate: unknown module Gone"


def named_suite(tmp_path: Path) -> dict[str, str]:
    """The env that makes `minif2f-test` (its YAML says Lean v4.24.0) two problems, p1 and p2:
    its data file found first via PROVER_DATA, with a request log for FakeRepl."""
    write_suite(tmp_path / "minif2f-lean4.24.jsonl", ["p1", "p2"])
    return {"PROVER_DATA": str(tmp_path), "FAKE_REPL_LOG": str(tmp_path / "requests.jsonl")}


def sent_statements(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_REPL_LOG"])
    requests = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [r["cmd"] for r in requests if r.get("cmd", "").startswith("theorem p")]


REFUSED_4_9 = (
    "prover: suite minif2f-test is written for Lean v4.24.0 but the checker runs Lean v4.9.0: "
    "run it on a checker built for v4.24.0 (`docker build -t prover:v4.24.0 --build-arg "
    "LEAN_VERSION=v4.24.0 .`), or pass --allow-version-mismatch to run it anyway"
)


def test_a_checker_on_another_lean_is_refused_before_any_statement(fake_repl_script, tmp_path):
    env = named_suite(tmp_path)
    older = check("minif2f-test", fake_repl_script(version="4.9.0"), "--json", env=env)
    assert older.returncode == 2, older.stderr
    assert older.stderr.strip().splitlines() == [REFUSED_4_9]
    assert older.stdout == "" and sent_statements(env) == []


def test_a_release_candidate_is_not_the_release(fake_repl_script, tmp_path) -> None:
    env = named_suite(tmp_path)
    rc = check("minif2f-test", fake_repl_script(version="4.24.0-rc1"), env=env)
    assert rc.returncode == 2, rc.stderr
    (line,) = rc.stderr.strip().splitlines()
    assert "the checker runs Lean v4.24.0-rc1" in line and "LEAN_VERSION=v4.24.0 ." in line
    assert sent_statements(env) == []


def test_allow_version_mismatch_checks_with_a_warning(fake_repl_script, tmp_path) -> None:
    env = named_suite(tmp_path)
    command = fake_repl_script(version="4.9.0")
    allowed = check("minif2f-test", command, "--json", "--allow-version-mismatch", env=env)
    assert allowed.returncode == 0, allowed.stderr
    warning = (
        "warning: suite minif2f-test is written for Lean v4.24.0 but the checker runs Lean "
        "v4.9.0 (a mismatch allowed): some statements may not elaborate (`prover suite check "
        "minif2f-test` lists them)"
    )
    assert warning in allowed.stderr.splitlines()
    doc = json.loads(allowed.stdout)
    assert doc["lean_version_warning"] == warning and doc["elaborate"] == 2
    assert sorted(sent_statements(env)) == [
        "theorem p1 (n : ℕ) : n + 0 = n := by sorry",
        "theorem p2 (n : ℕ) : n + 0 = n := by sorry",
    ]


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_the_same_version_runs_whatever_its_v_prefix_or_patch(fake_repl_script, tmp_path) -> None:
    env = named_suite(tmp_path)
    for reported in ("4.24.0", "v4.24.0", "4.24"):  # the suite says v4.24.0
        same = check("minif2f-test", fake_repl_script(version=reported), "--json", env=env)
        assert same.returncode == 0, (reported, same.stderr)
        assert "warning" not in same.stderr, reported
        assert json.loads(same.stdout)["lean_version_warning"] is None


def test_an_unknown_checker_version_warns_and_checks(fake_repl_script, tmp_path) -> None:
    env = named_suite(tmp_path)
    not_a_version = "Lean version 'banana', which is not a version"
    for reported, said in (("", "no Lean version"), ("banana", not_a_version)):
        unknown = check("minif2f-test", fake_repl_script(version=reported), "--json", env=env)
        assert unknown.returncode == 0, (reported, unknown.stderr)
        warning = (
            f"warning: the checker reports {said}: not compared with suite minif2f-test's "
            "Lean v4.24.0"
        )
        assert warning in unknown.stderr.splitlines()
        assert json.loads(unknown.stdout)["lean_version_warning"] == warning


def test_a_remote_checker_on_another_lean_is_refused(fake_repl_script, tmp_path) -> None:
    env = named_suite(tmp_path)
    command = fake_repl_script(version="4.9.0")

    def pool() -> ReplPool:
        config = VerifierConfig(workers=1, timeout=10)
        return ReplPool(config, transport_factory=plain_factory(command))

    with running_server(pool) as url:
        refused = check("minif2f-test", command, "--verifier", url, env=env)
        allowed = check("minif2f-test", command, "--verifier", url, "--json",
                        "--allow-version-mismatch", env=env)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [REFUSED_4_9]  # the server's /health said
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["checker_lean_version"] == "4.9.0"


def test_real_minif2f_all_elaborate(fake_repl_script) -> None:
    result = check("minif2f-test", fake_repl_script(), "--workers", "2", "--json", env=SHIPPED)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["suite"], doc["total"], doc["elaborate"], doc["fail"]) == (
        "minif2f-test",
        244,
        244,
        0,
    )
    assert doc["suite_lean_version"] == "v4.24.0" and doc["lean_version_warning"] is None
    assert "warning" not in result.stderr


def test_real_minif2f_one_renamed_lemma(fake_repl_script) -> None:
    rules = [
        {
            "match": "theorem mathd_algebra_478",
            "response": {"messages": [lean_error("unknown constant 'Real.old_name'")]},
        }
    ]
    result = check("minif2f-test", fake_repl_script(rules), "--workers", "2", env=SHIPPED)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "minif2f-test: 244 statements: 243 elaborate, 1 fail (1 error)"
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 1
    assert "mathd_algebra_478" in rows[0] and "unknown constant 'Real.old_name'" in rows[0]


def test_lean_folder_statements_keep_their_context(fake_repl_script, tmp_path) -> None:
    folder = tmp_path / "putnam"
    folder.mkdir()
    (folder / "answer.lean").write_text(
        "import Mathlib\n\nabbrev answer_solution : ℕ := sorry\n\n"
        "theorem answer : answer_solution = 3 := by\n  sorry\n"
    )
    log = tmp_path / "requests.jsonl"
    result = check(folder, fake_repl_script(), "--json", env={"FAKE_REPL_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line).get("cmd", "") for line in log.read_text().splitlines()]
    context = "abbrev answer_solution : ℕ := sorry\n\n"
    assert context + "theorem answer : answer_solution = 3 := by sorry" in sent


def test_bad_input_is_one_line_and_exit_2(fake_repl_script) -> None:
    for args in (["no-such-suite"], ["minif2f-test", "--split", "nope"], ["missing/x.jsonl"]):
        result = check(args[0], fake_repl_script(), *args[1:])
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("prover: ")
    unknown = check("no-such-suite", fake_repl_script())
    assert "unknown suite 'no-such-suite'" in unknown.stderr
    assert "minif2f-test" in unknown.stderr  # the known names are listed


def test_remote_verifier_gives_the_local_results(fake_repl_script, tmp_path) -> None:
    suite = write_suite(tmp_path / "mini.jsonl", NAMES)
    command = fake_repl_script(RULES)
    local = json.loads(check(suite, command, "--json").stdout)

    def pool() -> ReplPool:
        config = VerifierConfig(workers=2, timeout=10)
        return ReplPool(config, transport_factory=plain_factory(command))

    with running_server(pool) as url:
        remote_run = check(suite, command, "--json", "--verifier", url)
    assert remote_run.returncode == 1, remote_run.stderr
    remote = json.loads(remote_run.stdout)

    def outcome(doc: dict) -> list[tuple]:
        return [(r["name"], r["status"], r["detail"], r["warnings"]) for r in doc["results"]]

    assert outcome(remote) == outcome(local)
    assert remote["checker_lean_version"] == "4.24.0"  # from the server's /health


def test_check_suite_in_process_reports_each_result(fake_repl_script, tmp_path) -> None:
    suite = load_suite(str(write_suite(tmp_path / "mini.jsonl", NAMES)))
    seen: list[str] = []
    config = VerifierConfig(workers=2, timeout=10)
    with ReplPool(config, transport_factory=plain_factory(fake_repl_script(RULES))) as pool:
        report = check_suite(pool, suite, on_result=lambda r: seen.append(r.name))
        assert pool.stats.header_elaborations <= 2
    assert sorted(seen) == sorted(NAMES)
    assert [r.name for r in report.results] == NAMES
    assert [r.name for r in report.failures] == ["renamed", "mismatch"]
    assert report.summary() == "mini: 6 statements: 4 elaborate, 2 fail (2 error)"
    assert statement_command(suite.problems[0]) == (
        "theorem good_a (n : ℕ) : n + 0 = n := by sorry"
    )


def test_suite_list() -> None:
    result = run_prover("suite", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(known_suites())
    by_name = {r["name"]: r for r in rows}
    assert by_name["minif2f-test"]["lean_version"] == "v4.24.0"
    assert by_name["minif2f-test"]["split"] == "test"
    assert "miniF2F test split" in by_name["minif2f-test"]["description"]
    table = run_prover("suite", "list", env=WIDE)
    assert table.returncode == 0
    for name in known_suites():
        assert name in table.stdout


def test_suite_list_says_whether_the_data_is_here(tmp_path) -> None:
    write_suite(tmp_path / "minif2f-lean4.24.jsonl", ["p"])
    listed = run_prover("suite", "list", "--json", env={"PROVER_DATA": str(tmp_path)})
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["minif2f-test"]["data_path"] == str(tmp_path / "minif2f-lean4.24.jsonl")
    # a suite with no copy in $PROVER_DATA is read from the package's own
    proofnet = rows["proofnet"]
    assert proofnet["data_path"] == str(data_dir() / "proofnet-lean4.9-deepseek.jsonl")


def test_suite_list_shows_every_suite_present() -> None:
    """With nothing beside the package, every Lean suite's data is found in the package."""
    listed = run_prover("suite", "list", "--json", env=SHIPPED)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["name"] for r in rows} == set(known_suites()) == {
        "countdown", "minif2f-deepseek-test", "minif2f-deepseek-valid", "minif2f-test",
        "minif2f-valid", "proofnet", "putnambench",
    }  # fmt: skip
    for row in rows:
        if row["task"] == "lean":
            assert row["data_path"] == str(data_dir() / row["data"]), row["name"]
    table = run_prover("suite", "list", env={**SHIPPED, **WIDE})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "missing" not in table.stdout
    for row in rows:
        line = next(line for line in lines if f" {row['name']} " in line)
        assert ("here" if row["task"] == "lean" else "generated") in line, line


def test_the_table_shows_the_end_of_a_crash_detail(fake_repl_script, tmp_path) -> None:
    """A dying REPL's last stderr line says why (`lake: error: ...`): the table keeps it."""
    suite = write_suite(tmp_path / "mini.jsonl", ["good_a", "boom"])
    stderr = "\n".join(
        ["warning: manifest out of date: git revision of dependency 'mathlib' changed"] * 3
        + ["lake: error: no such package 'Mathlib'"]
    )
    rules = [{"match": "theorem boom", "exit": 1, "stderr": stderr}]
    result = check(suite, fake_repl_script(rules), "--workers", "1")
    assert result.returncode == 1, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    detail = " ".join(row.split("│")[-2].strip() for row in rows)
    assert "crash" in rows[0] and "REPL died" in detail
    assert "lake: error: no such package 'Mathlib'" in detail, result.stdout
