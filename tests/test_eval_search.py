"""`prover eval --search best-first`: each of the N samples of a problem is one best-first
search. Lean is the FakeRepl tactic table (a scripted state graph), the model the scripted
step-level model double (in-process, through the real CLI) or, where the run is killed from
outside, the scripted OpenAI-compatible server double."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.metrics import pass_at_k
from prover.lean.sandbox import ReplCommand
from prover.models.base import Completion, Prompt, SamplingParams
from prover.prove.search import expansion_seed, search_seed

from conftest import FAKE_REPL, run_prover
from doubles.scripted_step_model import ScriptedStepModel

STEP_MODEL = "ByteDance-Seed/BFS-Prover-V2-7B"  # its step-level format: bfs-prover
HEADER = "import Mathlib\n"
STATEMENTS = {
    "swap": "theorem swap (a b : ℕ) (h : a = b) : b = a := by\n",
    "stuck": "theorem stuck : (1 : ℕ) = 2 := by\n",
    "coin": "theorem coin (c : ℕ) (h : c = 1) : 1 = c := by\n",
}
SWAP = "a b : ℕ\nh : a = b\n⊢ b = a"
FLIPPED = "a b : ℕ\nh : a = b\n⊢ a = b"
STUCK = "⊢ 1 = 2"
FALSE = "⊢ False"
COIN = "c : ℕ\nh : c = 1\n⊢ 1 = c"
GRAPH = {
    "states": {"s0": [SWAP], "s1": [FLIPPED], "t0": [STUCK], "t1": [FALSE], "c0": [COIN]},
    "roots": [
        {"match": "theorem stuck", "state": "t0"},
        {"match": "theorem coin", "state": "c0"},
    ],
    "edges": {
        # `exact h.symm` closes the goal in tactic mode; the whole proof is rejected (below)
        "s0": {"exact h.symm": "proved", "symm": "s1", "bad": {"error": "unknown identifier"}},
        "s1": {"exact h": "proved", "symm": "s0"},
        "t0": {"norm_num": {"error": "norm_num failed"}, "simp": "t1"},
        "c0": {"omega": "proved", "rfl": {"error": "rfl failed"}},
    },
}
MISMATCH = {"severity": "error", "pos": {"line": 1, "column": 2}, "endPos": None,
            "data": "type mismatch"}  # fmt: skip
REJECT_EXACT_SYMM = {"match": "exact h.symm", "anchored": True,
                     "response": {"messages": [MISMATCH]}}  # fmt: skip
SCRIPT = {
    SWAP: [("exact h.symm", -0.1), ("symm", -0.5), ("bad", -2.0)],
    FLIPPED: [("exact h", -0.2), ("symm", -0.3)],
    STUCK: [("norm_num", -0.1), ("simp", -0.4)],
    COIN: [("rfl", -0.1)],  # `omega` only for a lucky seed (SeededStepModel)
}
SWAP_PROOF = "by\n  symm\n  exact h"


class SeededStepModel(ScriptedStepModel):
    """The scripted step model, which at the coin's root also proposes `omega` when the call's
    seed is one of `lucky`: searches that differ by seed then differ in outcome."""

    def __init__(self, lucky: set[int]) -> None:
        super().__init__(SCRIPT)
        self.lucky = lucky

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        out = super().generate(prompts, params)
        for prompt, samples in zip(prompts, out, strict=True):
            if COIN in (prompt.text or "") and params.seed in self.lucky:
                samples[0] = Completion("omega", tokens=1, finish_reason="stop", logprob=-0.05)
        return out


def lucky_first_search(seed: int = 0) -> set[int]:
    """The seed of the first expansion of search 0 (of a run with `seed`): coin's search 0
    proves it, its search 1 does not."""
    return {expansion_seed(search_seed(seed, 0), 1)}


def suite_file(tmp_path: Path, names=("swap", "stuck", "coin")) -> Path:
    path = tmp_path / "suite.jsonl"
    rows = [
        {"name": n, "split": "test", "header": HEADER, "formal_statement": STATEMENTS[n]}
        for n in names
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def repl_argv(tmp_path: Path) -> str:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [REJECT_EXACT_SYMM], "tactic_graph": GRAPH}))
    return shlex.join(ReplCommand((sys.executable, str(FAKE_REPL), "script", str(rules))).argv)


def search_args(suite: Path, out: Path, repl: str, *extra: str, api_base: str = "") -> list[str]:
    return [
        "eval", str(suite), "--search", "best-first", "--n", "2", "--out", str(out),
        "--backend", "openai", "--model", STEP_MODEL,
        "--api-base", api_base or "http://127.0.0.1:9/v1", "--seed", "0",
        "--sandbox", "none", "--repl", repl, "--workers", "2", *extra,
    ]  # fmt: skip


@pytest.fixture
def eval_here(monkeypatch, capsys):
    """`prover eval ...` through the real CLI in this process, the model being `model` (a test
    double of a step-level backend): (exit code, stderr)."""

    def run(model: object, *args: str) -> tuple[int, str]:
        import harness.eval_run
        from prover.cli import main

        monkeypatch.setattr(harness.eval_run, "make_backend", lambda *a, **k: model)
        monkeypatch.setattr(sys, "argv", ["prover", *args])
        previous = signal.getsignal(signal.SIGTERM)
        try:
            with pytest.raises(SystemExit) as done:
                main()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return int(done.value.code or 0), capsys.readouterr().err

    return run


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


# -- a run of searches -----------------------------------------------------------------------


def test_each_search_is_one_sample_and_pass_at_k_counts_them(tmp_path, eval_here) -> None:
    out = tmp_path / "run"
    model = SeededStepModel(lucky_first_search())
    code, err = eval_here(model, *search_args(suite_file(tmp_path), out, repl_argv(tmp_path)))
    assert code == 0, err
    results = results_of(out)
    # swap: both searches prove it; stuck: neither; coin: only search 0 (its seed is lucky)
    assert [(r["name"], r["n"], r["c"]) for r in results["problems"]] == [
        ("swap", 2, 2), ("stuck", 2, 0), ("coin", 2, 1),
    ]  # fmt: skip
    for k in ("1", "2"):
        expected = (1 + 0 + pass_at_k(2, 1, int(k))) / 3
        assert results["pass_at_k"][k] == pytest.approx(expected, abs=1e-6)
    assert results["precision"] == pytest.approx(0.5, abs=1e-6)
    assert results["coverage"] == pytest.approx(2 / 3, abs=1e-6)
    assert results["reasons"] == {"ok": 3, "search_exhausted": 3}
    # the two searches of a problem sampled with different seeds
    seeds = {p.seed for p in model.params}
    assert {expansion_seed(search_seed(0, i), 1) for i in (0, 1)} <= seeds
    search = results["search"]
    assert search["algorithm"] == "best-first" and search["prompt_format"] == "bfs-prover"
    assert (search["expansions"], search["tactics_per_state"]) == (100, 8)
    assert search["length_exponent"] == 2.0 and search["time_s"] == 600.0
    # swap: root, then the flipped state (2); stuck: root, then `⊢ False` with no tactic (2);
    # coin: one expansion each
    by_name = {r["name"]: r for r in results["problems"]}
    assert by_name["swap"]["expansions"] == {"mean": 2.0, "max": 2}
    assert by_name["stuck"]["expansions"] == {"mean": 2.0, "max": 2}
    assert by_name["coin"]["expansions"] == {"mean": 1.0, "max": 1}
    assert search["expansions_used"] == {"mean": pytest.approx(10 / 6, abs=1e-3), "max": 2,
                                         "total": 10}  # fmt: skip
    assert search["stopped"] == {"proved": 3, "exhausted": 3}
    assert results["provenance"]["prompt_format"] == "bfs-prover"
    # one sample and one verdict per search; a proved one holds its assembled proof
    lines = records(out)
    assert len(lines) == 12
    samples = {(r["problem"], r["index"]): r for r in lines if r["type"] == "sample"}
    verdicts = {(r["problem"], r["index"]): r for r in lines if r["type"] == "verdict"}
    assert samples[("swap", 0)]["completion"] == SWAP_PROOF
    assert samples[("swap", 0)]["search"]["rejected"] == 1  # `exact h.symm`: Lean said no
    assert samples[("coin", 0)]["completion"] == "by\n  omega"
    assert samples[("coin", 1)]["completion"] == ""
    assert verdicts[("coin", 1)]["reason"] == "search_exhausted"
    assert "no open state left after 1 expansions" in verdicts[("coin", 1)]["detail"]
    assert verdicts[("swap", 1)]["accepted"] and verdicts[("swap", 1)]["source"] == "verifier"
    assert verdicts[("stuck", 0)]["hash"] is None and verdicts[("stuck", 0)]["source"] == "search"
    accepted = [json.loads(line) for line in (out / "accepted.jsonl").read_text().splitlines()]
    assert [(a["name"], a["proof"]) for a in accepted] == [
        ("swap", SWAP_PROOF), ("swap", SWAP_PROOF), ("coin", "by\n  omega"),
    ]  # fmt: skip
    assert results["problems"][0]["distinct_accepted"] == 1
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["search"] == {k: v for k, v in search.items()
                                  if k not in ("expansions_used", "stopped")}  # fmt: skip
    assert "best-first searches" in err and "expansions used: mean 1.67, max 2 of 100" in err


def test_a_search_out_of_budget_is_a_failed_sample_saying_so(tmp_path, eval_here) -> None:
    out = tmp_path / "run"
    args = search_args(suite_file(tmp_path, ["swap"]), out, repl_argv(tmp_path), "--expansions",
                       "1", "--tactics-per-state", "2")  # fmt: skip
    model = ScriptedStepModel(SCRIPT)
    code, err = eval_here(model, *args)
    assert code == 0, err
    results = results_of(out)
    assert results["problems"][0]["c"] == 0 and results["reasons"] == {"search_budget": 2}
    assert results["search"]["stopped"] == {"expansions": 2}
    assert (results["search"]["expansions"], results["search"]["tactics_per_state"]) == (1, 2)
    assert all(p.n == 2 for p in model.params)
    verdict = next(r for r in records(out) if r["type"] == "verdict")
    assert "the budget of 1 expansions ran out" in verdict["detail"]
    assert "1 path(s) closed the goals but the whole proof was rejected" in verdict["detail"]


def test_resume_with_other_search_settings_is_refused(tmp_path, eval_here) -> None:
    out = tmp_path / "run"
    suite, repl = suite_file(tmp_path, ["swap"]), repl_argv(tmp_path)
    code, err = eval_here(ScriptedStepModel(SCRIPT), *search_args(suite, out, repl))
    assert code == 0, err
    other = search_args(suite, out, repl, "--resume", "--expansions", "5")
    code, err = eval_here(ScriptedStepModel(SCRIPT), *other)
    assert code == 2 and "search.expansions=100, not 5" in err
    assert len(err.strip().splitlines()) == 1
    whole = search_args(suite, out, repl, "--resume", "--prompt-format", "deepseek-v1.5")
    whole = [a for a in whole if a not in ("--search", "best-first")]
    code, err = eval_here(ScriptedStepModel(SCRIPT), *whole)
    assert code == 2 and f"{out} was run with prompt_format=bfs-prover" in err  # never mixed


def test_a_search_stored_without_its_verdict_is_run_again_alone(tmp_path, eval_here) -> None:
    """A kill between a search's two lines (a torn verdict line, cut on reopening): that search
    is not finished, and it is the only one run again."""
    out = tmp_path / "run"
    suite, repl = suite_file(tmp_path, ["swap", "coin"]), repl_argv(tmp_path)
    one_at_a_time = search_args(suite, out, repl, "--workers", "1")  # coin's search 1 last
    code, err = eval_here(ScriptedStepModel(SCRIPT), *one_at_a_time)
    assert code == 0, err
    samples = out / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    assert json.loads(lines[-1])["type"] == "verdict"
    last = json.loads(lines[-1])
    samples.write_text("".join(lines[:-1]) + lines[-1][:20])  # the verdict line torn
    model = SeededStepModel(set())
    code, err = eval_here(model, *one_at_a_time, "--resume")
    assert code == 0, err
    assert "cut a torn last line" in err and "(3 stored best-first searches kept)" in " ".join(
        err.split()
    )
    assert [p.text for p in model.prompts] == [COIN + ":::"]  # coin's root, one search
    kept = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [(r["type"], r["problem"], r["index"]) for r in kept[-2:]] == [
        ("sample", last["problem"], last["index"]), ("verdict", last["problem"], last["index"]),
    ]  # fmt: skip
    assert [(r["name"], r["c"]) for r in results_of(out)["problems"]] == [("swap", 2), ("coin", 0)]


def test_the_verdict_cache_holds_accepted_proofs_only_and_never_serves_a_search(
    tmp_path, eval_here
) -> None:
    """Key: the accepted proof's whole check item, as a whole-proof check of that text would
    have; a failed search has no text and writes nothing; a search is never skipped."""
    cache = tmp_path / "cache"
    suite, repl = suite_file(tmp_path, ["swap", "stuck"]), repl_argv(tmp_path)
    first = ScriptedStepModel(SCRIPT)
    code, err = eval_here(first, *search_args(suite, tmp_path / "r1", repl, "--cache", str(cache)))
    assert code == 0, err
    with sqlite3.connect(cache / "verdicts.sqlite") as db:
        rows = db.execute("SELECT hash, accepted, reason FROM verdicts").fetchall()
    hashes = {r["hash"] for r in records(tmp_path / "r1") if r["type"] == "verdict" and r["hash"]}
    assert len(hashes) == 1 and [(h, a, why) for h, a, why in rows] == [(hashes.pop(), 1, "ok")]
    second = ScriptedStepModel(SCRIPT)
    code, err = eval_here(second, *search_args(suite, tmp_path / "r2", repl, "--cache", str(cache)))
    assert code == 0, err
    assert len(second.prompts) == len(first.prompts) > 0  # every search ran again
    again = results_of(tmp_path / "r2")
    assert again["cache_hit_rate"] == 0.0 and again["timings"]["verifier_calls"] == 4
    assert again["problems"] == results_of(tmp_path / "r1")["problems"]


def test_a_machinery_failure_stops_the_run_and_stores_no_sample(tmp_path, eval_here) -> None:
    """The REPL starts once only: the known-good check passes, then no search can get a
    process. The run stops (results.json says so), no search is a failed sample, and
    `--resume` on a working REPL runs them all."""
    good = repl_argv(tmp_path)
    flag = tmp_path / "started-once"
    breaking = f"sh -c 'if [ -e {flag} ]; then exit 1; fi; touch {flag}; exec {good}'"
    out = tmp_path / "run"
    suite = suite_file(tmp_path, ["swap"])
    model = ScriptedStepModel(SCRIPT)
    code, err = eval_here(model, *search_args(suite, out, breaking, "--recycle-after", "1"))
    assert code == 2 and "machinery" in err.strip().splitlines()[-1]
    assert "stopped" in results_of(out)
    assert not (out / "samples.jsonl").read_text()
    code, err = eval_here(model, *search_args(suite, out, good, "--resume"))
    assert code == 0, err
    assert results_of(out)["problems"][0]["c"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--verifier", "http://127.0.0.1:9"), "the remote verifier API has no tactic mode"),
        (("--prompt-format", "deepseek-v1.5"), "is a whole-proof format"),
        (("--search", "mcts"), "unknown search 'mcts'"),
    ],
)
def test_what_does_not_go_with_search_is_refused(tmp_path, extra, message) -> None:
    out = tmp_path / "run"
    done = run_prover(*search_args(suite_file(tmp_path), out, "false", *extra))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_search_options_need_search_and_a_lean_suite(tmp_path) -> None:
    plain = run_prover("eval", str(suite_file(tmp_path)), "--expansions", "3")
    assert plain.returncode == 2 and "apply only with --search" in plain.stderr
    done = run_prover("eval", "countdown", "--search", "best-first", "--model", STEP_MODEL)
    assert done.returncode == 2, done.stderr
    assert "--search applies to Lean suites only" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    whole = run_prover("eval", str(suite_file(tmp_path)), "--search", "best-first", "--backend",
                       "openai", "--model", "some/whole-proof-model")  # fmt: skip
    assert whole.returncode == 2 and "no step-level prompt format" in whole.stderr


def test_report_shows_the_search(tmp_path, eval_here) -> None:
    out = tmp_path / "run"
    code, err = eval_here(ScriptedStepModel(SCRIPT),
                          *search_args(suite_file(tmp_path), out, repl_argv(tmp_path)))  # fmt: skip
    assert code == 0, err
    shown = run_prover("report", str(out), "--markdown")
    assert shown.returncode == 0, shown.stderr
    assert "BFS-Prover-V2-7B · best-first" in shown.stdout
    assert (
        "best-first search in ByteDance-Seed/BFS-Prover-V2-7B: bfs-prover prompts, 8 tactics "
        "per state, at most 100 expansions and 600 s a search, length exponent 2; expansions "
        "used: mean 1.67, max 2"
    ) in shown.stdout


# -- killed from outside, resumed -------------------------------------------------------------

pytest.importorskip("prover.models.openai_backend", reason="model backends not in this build")
from serving import ScriptedOpenAI, scripted_openai  # noqa: E402

ANSWERS = {SWAP: ["symm"], FLIPPED: ["exact h"], STUCK: ["norm_num"], COIN: ["omega"]}


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_sigkill_midway_then_resume_runs_only_the_missing_searches(tmp_path) -> None:
    names = ("swap", "stuck", "coin")
    suite, repl = suite_file(tmp_path, names), repl_argv(tmp_path)
    server = ScriptedOpenAI(ANSWERS, default="bad", delay_s=0.2)
    out = tmp_path / "killed"
    with scripted_openai(server) as url:
        args = search_args(suite, out, repl, "--workers", "1", "--tactics-per-state", "1",
                           api_base=url)  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "prover", *args], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=os.environ.copy(),
        )  # fmt: skip
        samples = out / "samples.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = samples.read_text() if samples.exists() else ""
            if text.count('"type": "verdict"') >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored_text = samples.read_text()
        done = {(r["problem"], r["index"]) for r in map(json.loads, stored_text.splitlines())
                if r["type"] == "verdict"}  # fmt: skip
        assert 2 <= len(done) < 6, "the kill must land midway"
        server.requests.clear()
        resumed = run_prover(*args, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        asked = server.requests
    said = " ".join(resumed.stderr.split())  # rich wraps lines at the terminal's width
    assert f"({len(done)} stored best-first searches kept)" in said
    # the searches stored were not run again: no prompt of a problem whose two are stored
    finished = {p for p in names if (p, 0) in done and (p, 1) in done}
    roots = {"swap": SWAP, "stuck": STUCK, "coin": COIN}
    assert finished and not any(roots[p] in r["prompt"] for p in finished for r in asked)
    assert samples.read_text().startswith(stored_text)
    final = [json.loads(line) for line in samples.read_text().splitlines()]
    verdicts = [(r["problem"], r["index"]) for r in final if r["type"] == "verdict"]
    assert len(verdicts) == len(set(verdicts)) == 6  # each search judged exactly once
    results = results_of(out)
    assert [(r["name"], r["c"]) for r in results["problems"]] == [
        ("swap", 2), ("stuck", 0), ("coin", 2),
    ]  # fmt: skip


def test_a_search_run_is_gated_only_against_a_search_baseline(tmp_path, eval_here) -> None:
    """`--baseline` is vetted before any search: a whole-proof baseline, or a search baseline
    with other settings, is refused (exit 2) and the candidate run is never started."""
    suite, repl = suite_file(tmp_path, ("swap",)), repl_argv(tmp_path)
    base = tmp_path / "base"
    code, err = eval_here(ScriptedStepModel(SCRIPT), *search_args(suite, base, repl))
    assert code == 0, err
    # the same settings gate fine
    code, err = eval_here(
        ScriptedStepModel(SCRIPT), *search_args(suite, tmp_path / "same", repl),
        "--baseline", str(base),
    )  # fmt: skip
    assert code == 0, err
    model = ScriptedStepModel(SCRIPT)
    wider = tmp_path / "wider"
    code, err = eval_here(
        model, *search_args(suite, wider, repl), "--expansions", "5", "--baseline", str(base)
    )
    assert code == 2
    assert "expansions=5 against baseline expansions=100" in err
    assert not model.params and not wider.exists()
    # a whole-proof baseline: change the recorded run into one (no search section)
    whole = tmp_path / "whole"
    whole.mkdir()
    results = results_of(base)
    del results["search"]
    (whole / "results.json").write_text(json.dumps(results))
    code, err = eval_here(
        model, *search_args(suite, tmp_path / "against-whole", repl), "--baseline", str(whole)
    )
    assert code == 2 and "a search run against a whole-proof baseline" in err
