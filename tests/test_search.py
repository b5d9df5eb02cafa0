"""Best-first search over tactic states: a scripted state graph (the FakeRepl tactic table, with
dead ends, a loop back to a seen state, a crashing and a timing-out tactic) and a scripted
step-level model test double; the proof it finds judged as a whole (also by `prover check`);
budgets, merging, the queue's order, banned tactics; `prover prove --search` end to end."""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from prover.errors import MachineryFailure
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.sandbox import ReplCommand
from prover.lean.tactic_session import TacticState
from prover.prove.search import (
    SearchConfig,
    SearchProblem,
    SearchQueue,
    assemble_proof,
    best_first_search,
    clean_tactic,
    expansion_seed,
    partial_result,
    priority,
    search_seed,
)
from prover.prove.search_loop import search_text
from prover.step_prompts import get_step_format

from conftest import FAKE_REPL, plain_factory, run_prover
from doubles.scripted_step_model import ScriptedStepModel

HEADER = "import Mathlib\n"
STATEMENT = "theorem t (a b : ℕ) (h : a = b) : b = a := by"
PROBLEM = SearchProblem("t", HEADER, STATEMENT)
ROOT = "a b : ℕ\nh : a = b\n⊢ b = a"
FLIPPED = "a b : ℕ\nh : a = b\n⊢ a = b"
SUBST = "a : ℕ\n⊢ a = a"
# `exact h.symm` closes the goal in tactic mode, but Lean rejects the whole proof built on it
# (at the tactic's own line, wherever the command holding it starts: "anchored")
WHOLE_PROOF_ERROR = {
    "severity": "error",
    "pos": {"line": 1, "column": 2},
    "endPos": None,
    "data": "type mismatch",
}
REJECT_EXACT_SYMM = {
    "match": "exact h.symm",
    "anchored": True,
    "response": {"messages": [WHOLE_PROOF_ERROR]},
}
GRAPH = {
    "states": {"s0": [ROOT], "s1": [FLIPPED], "s2": [SUBST]},
    "edges": {
        "s0": {
            "exact h.symm": "proved",
            "boom": {"to": "s1", "exit": 1},  # kills the process every time
            "slow": {"sleep_s": 1e9},  # never answers
            "subst h": "s2",
            "symm": "s1",
            "rw [eq_comm]": "s1",  # a second way to the same state
            "bad": {"error": "unknown identifier"},
        },
        "s1": {"symm": "s0", "exact h": "proved"},  # `symm` loops back to the root
        "s2": {"simp": {"error": "simp made no progress"}},  # a dead end
    },
}
ROOT_TACTICS = [
    ("exact h.symm", -0.1),
    ("exact?", -0.2),  # banned: never sent
    ("boom", -0.5),
    ("slow", -0.6),
    ("subst h", -0.7),
    ("symm", -1.0),
    ("rw [eq_comm]", -1.5),
    ("bad", -2.0),
]
SCRIPT = {
    ROOT: ROOT_TACTICS,
    FLIPPED: [("symm", -0.2), ("sorry", -0.3), ("exact h", -0.4)],
    SUBST: [("simp", -0.3)],
}
BFS = get_step_format("bfs-prover")


def rules_file(tmp_path: Path, graph: dict | None = None, rules=(REJECT_EXACT_SYMM,)) -> Path:
    path = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.json"
    path.write_text(json.dumps({"rules": list(rules), "tactic_graph": graph or GRAPH}))
    return path


def repl_command(rules: Path) -> ReplCommand:
    return ReplCommand((sys.executable, str(FAKE_REPL), "script", str(rules)))


def make_pool(rules: Path, **config) -> ReplPool:
    config.setdefault("workers", 1)
    config.setdefault("timeout", 10.0)
    config.setdefault("machinery_backoff_s", 0.01)
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(repl_command(rules)))


@pytest.fixture
def request_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    log = tmp_path / "pids.jsonl"
    monkeypatch.setenv("FAKE_REPL_PID_LOG", str(log))

    def read() -> list[tuple[int, dict]]:
        if not log.exists():
            return []
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        return [(row["pid"], row["request"]) for row in rows]

    return read


def sent_tactics(rows: list[tuple[int, dict]]) -> list[str]:
    return [r["tactic"].rsplit(" in ", 1)[-1] for _, r in rows if "tactic" in r]


def search(tmp_path: Path, script=SCRIPT, graph=None, rules=(REJECT_EXACT_SYMM,), **config):
    config.setdefault("tactic_timeout_s", 0.5)
    model = ScriptedStepModel(script)
    with make_pool(rules_file(tmp_path, graph, rules)) as pool:
        result = best_first_search(
            PROBLEM, backend=model, step_format=BFS, verifier=pool, config=SearchConfig(**config)
        )
        stats = pool.stats
    return result, model, stats


def prompted_states(model: ScriptedStepModel) -> list[str]:
    return [(p.text or "").removesuffix(":::") for p in model.prompts]


# -- the search over the scripted graph ------------------------------------------------------


def test_the_search_finds_the_proof_past_dead_ends_loops_crashes_and_timeouts(
    tmp_path, request_log
) -> None:
    result, model, stats = search(tmp_path)
    assert result.stopped == "proved" and result.proved
    assert result.tactics == ("symm", "exact h")
    assert result.proof == "by\n  symm\n  exact h"
    assert result.verdict is not None and result.verdict.accepted and result.verdict.replayed
    # the root, the dead end `subst h` (-0.7 beats `symm` at -1.0), then `symm`'s state
    assert prompted_states(model) == [ROOT, SUBST, FLIPPED]
    assert result.expansions == 3 and result.states == 3
    assert result.merged == 2  # `rw [eq_comm]` to s1, `symm` from s1 back to the root
    assert result.rejected == 1  # `exact h.symm`: closed in tactic mode, rejected as a whole
    assert result.tactics_banned == 2  # `exact?` and `sorry`
    assert result.tactics_sent == 10
    assert stats.tactic_restarts >= 3  # `boom` twice, `slow` once: the search went on
    # every sample asked for its log-probability, K at a time
    assert all(p.logprobs and p.n == SearchConfig().tactics_per_state for p in model.params)
    sent = sent_tactics(request_log())
    assert "exact?" not in sent and "sorry" not in sent


def test_a_merged_state_is_never_expanded_twice(tmp_path) -> None:
    # every tactic everywhere leads back to a state already found
    graph = {
        "states": {"s0": [ROOT], "s1": [FLIPPED]},
        "edges": {"s0": {"symm": "s1", "rw [eq_comm]": "s1"}, "s1": {"symm": "s0"}},
    }
    script = {ROOT: [("symm", -0.1), ("rw [eq_comm]", -0.2)], FLIPPED: [("symm", -0.1)]}
    result, model, _ = search(tmp_path, script, graph, expansions=50)
    assert result.stopped == "exhausted" and not result.proved
    assert prompted_states(model) == [ROOT, FLIPPED]
    assert (result.expansions, result.states, result.merged) == (2, 2, 2)


def test_a_path_whose_whole_proof_lean_rejects_is_not_proved(tmp_path) -> None:
    script = {ROOT: [("exact h.symm", -0.1), ("bad", -0.2)]}
    result, _, stats = search(tmp_path, script)
    assert result.stopped == "exhausted"
    assert result.proof is None and result.verdict is None and not result.proved
    assert result.rejected == 1
    assert stats.checks == 1  # the assembled proof went to the strict verifier, and failed


def test_identical_samples_are_run_once(tmp_path) -> None:
    script = {ROOT: [("exact h.symm", -0.1), ("  exact h.symm\n", -0.2)]}
    result, _, stats = search(tmp_path, script)
    assert result.tactics_sent == 1 and stats.tactics == 1 and stats.checks == 1


def test_the_found_proof_passes_prover_check_and_the_rejected_one_does_not(tmp_path) -> None:
    result, _, _ = search(tmp_path)
    assert result.proof is not None
    rules = rules_file(tmp_path)
    repl = shlex.join(repl_command(rules).argv)
    verdicts = {}
    for name, proof in (("found", result.proof), ("rejected", assemble_proof(["exact h.symm"]))):
        lean = tmp_path / f"{name}.lean"
        lean.write_text(f"{HEADER}\n{STATEMENT.removesuffix(' by')} {proof}\n")
        checked = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl", repl)
        verdicts[name] = (checked.returncode, json.loads(checked.stdout)["theorems"][0])
    code, found = verdicts["found"]
    assert code == 0 and found["accepted"] and found["reason"] == "ok"
    code, rejected = verdicts["rejected"]
    assert code == 1 and not rejected["accepted"] and rejected["reason"] == "error"


def test_banned_tactics_are_never_sent(tmp_path, request_log) -> None:
    script = {ROOT: [("exact?", -0.1), ("sorry", -0.2), ("run_tac pure ()", -0.3), ("apply?", -1)]}
    result, _, stats = search(tmp_path, script)
    assert result.stopped == "exhausted"
    assert (result.tactics_banned, result.tactics_sent) == (4, 0)
    assert stats.tactics_banned == 4 and stats.tactics == 0
    assert sent_tactics(request_log()) == []


# -- budgets -----------------------------------------------------------------------------------


def test_the_expansion_budget_stops_it(tmp_path) -> None:
    result, model, _ = search(tmp_path, expansions=1)
    assert result.stopped == "expansions" and not result.proved
    assert result.expansions == 1 and len(model.prompts) == 1


def test_the_time_budget_stops_it_even_inside_a_hanging_tactic(tmp_path) -> None:
    script = {ROOT: [("slow", -0.1), ("symm", -0.2)], FLIPPED: [("exact h", -0.1)]}
    began = time.monotonic()
    result, _, _ = search(tmp_path, script, time_s=1.0, tactic_timeout_s=30.0)
    assert result.stopped == "time" and not result.proved
    assert time.monotonic() - began < 10  # not the tactic's 30 s, nor the check timeout
    assert result.time_s < 5


def test_no_tactic_anywhere_exhausts_it(tmp_path) -> None:
    result, _, _ = search(tmp_path, {ROOT: [("bad", -0.1)]})
    assert result.stopped == "exhausted" and result.expansions == 1


def test_a_missing_log_probability_counts_as_zero(tmp_path) -> None:
    class NoLogprobs(ScriptedStepModel):
        def generate(self, prompts, params):
            answers = super().generate(prompts, params)
            return [
                [type(c)(c.text, c.tokens, c.finish_reason) for c in sampled] for sampled in answers
            ]

    model = NoLogprobs({ROOT: [("symm", -0.1)], FLIPPED: [("exact h", -0.1)]})
    with make_pool(rules_file(tmp_path)) as pool:
        result = best_first_search(
            PROBLEM, backend=model, step_format=BFS, verifier=pool, config=SearchConfig()
        )
    assert result.proved and result.missing_logprobs == 2 * SearchConfig().tactics_per_state


# -- the machinery -----------------------------------------------------------------------------


def test_a_check_inside_the_search_on_a_one_worker_pool_keeps_the_process(
    tmp_path, request_log
) -> None:
    """The session lends its process to the whole-proof check (with one worker there is no
    other) and gets the same one back, its states intact: nothing is rebuilt."""
    script = {ROOT: [("exact h.symm", -0.1), ("symm", -0.2)], FLIPPED: [("exact h", -0.1)]}
    result, _, stats = search(tmp_path, script)
    assert result.proved and result.rejected == 1
    assert (stats.tactic_restarts, stats.tactic_replays, stats.restarts) == (0, 0, 0)
    rows = request_log()
    tactic_pids = {pid for pid, r in rows if "tactic" in r}
    check_pids = {pid for pid, r in rows if "exact h" in r.get("cmd", "")}
    assert len(tactic_pids) == 1 and check_pids == tactic_pids


def test_a_machinery_failure_propagates_with_the_search_so_far(tmp_path) -> None:
    rules = [{"match": "prover_canary_check", "exit": 1}]  # the known-good check fails
    script = {ROOT: [("symm", -0.1)], FLIPPED: [("boom", -0.1)]}
    graph = json.loads(json.dumps(GRAPH))
    graph["edges"]["s1"]["boom"] = {"to": "s0", "exit": 1}
    with pytest.raises(MachineryFailure) as failure:
        search(tmp_path, script, graph, rules)
    partial = partial_result(failure.value)
    assert partial is not None and partial.stopped == "machinery"
    assert partial.expansions == 2 and not partial.proved and partial.detail


def test_independent_searches_differ_by_seed() -> None:
    assert search_seed(None, 3) is None and expansion_seed(None, 1) is None
    seeds = {expansion_seed(search_seed(7, s), e) for s in range(4) for e in range(1, 50)}
    assert len(seeds) == 4 * 49


def test_each_expansion_samples_with_its_own_seed(tmp_path) -> None:
    seeds = []
    for search_index in range(2):
        _, model, _ = search(tmp_path, seed=search_seed(5, search_index))
        seeds.append([p.seed for p in model.params])
    assert len(set(seeds[0])) == len(seeds[0]) == 3
    assert not set(seeds[0]) & set(seeds[1])


# -- the queue, the tactics, the proof text ----------------------------------------------------


def state(i: int, depth: int) -> TacticState:
    return TacticState(i, (f"⊢ goal {i}",), tuple(f"t{k}" for k in range(depth)))


def test_priority_is_cumulative_logprob_over_length_to_the_exponent() -> None:
    assert priority(0.0, 0, 2.0) == 0.0  # the root
    assert priority(-3.0, 3, 0.0) == -3.0
    assert priority(-3.0, 3, 1.0) == -1.0
    assert priority(-8.0, 2, 2.0) == -2.0
    assert SearchConfig().length_exponent == 2.0


@pytest.mark.parametrize(
    ("exponent", "order"),
    [
        (0.0, [1, 2, 3, 4]),  # plain cumulative log-probability: the shallow ones first
        (1.0, [3, 1, 2, 4]),  # the mean per tactic: -0.5, -0.9, -1.0 (tie: first come)
        (2.0, [3, 4, 1, 2]),  # depth favoured: -0.25, -0.75, -0.9, -1.0
    ],
)
def test_the_queue_pops_the_highest_priority_first(exponent: float, order: list[int]) -> None:
    queue = SearchQueue(exponent)
    queue.push(state(1, 1), -0.9)
    queue.push(state(2, 1), -1.0)
    queue.push(state(3, 2), -1.0)
    queue.push(state(4, 2), -3.0)
    popped = [queue.pop()[0].id for _ in range(len(queue))]
    assert popped == order and not queue


def test_equal_priorities_pop_in_arrival_order() -> None:
    queue = SearchQueue(1.0)
    for i in range(5):
        queue.push(state(i, 1), -1.0)
    assert [queue.pop()[0].id for _ in range(5)] == [0, 1, 2, 3, 4]


def test_tactics_are_cleaned_and_assembled_with_their_relative_indentation() -> None:
    assert clean_tactic("  simp\n") == "simp"
    assert clean_tactic("   ") is None and clean_tactic(None) is None
    multi = clean_tactic("\n  constructor\n  · simp\n  · exact h\n")
    assert multi == "constructor\n· simp\n· exact h"
    nested = clean_tactic("have h2 : a = b := by\n  exact h")
    assert nested == "have h2 : a = b := by\n  exact h"
    proof = assemble_proof(["intro x", nested or "", "exact h2.symm"])
    assert proof == ("by\n  intro x\n  have h2 : a = b := by\n    exact h\n  exact h2.symm")


def test_a_bad_config_is_refused() -> None:
    for bad in (
        {"expansions": 0},
        {"tactics_per_state": 0},
        {"length_exponent": -1.0},
        {"time_s": 0.0},
        {"tactic_timeout_s": 0.0},
    ):
        with pytest.raises(ValueError):
            SearchConfig(**bad)  # type: ignore[arg-type]


# -- prove by search: the file loop and the CLI -------------------------------------------------

FILE = """import Mathlib

theorem swap (a b : ℕ) (h : a = b) : b = a := by
  sorry

theorem stuck : (1 : ℕ) = 2 := by
  sorry
"""
STUCK = "⊢ 1 = 2"
FILE_GRAPH = {**GRAPH, "states": {**GRAPH["states"], "t0": [STUCK]}}
FILE_GRAPH["roots"] = [{"match": "theorem stuck", "state": "t0"}]


def test_search_text_writes_back_only_accepted_proofs(tmp_path) -> None:
    script = {**SCRIPT, STUCK: [("norm_num", -0.1)]}
    model = ScriptedStepModel(script)
    seen = []
    with make_pool(rules_file(tmp_path, FILE_GRAPH)) as pool:
        report = search_text(
            FILE,
            backend=model,
            step_format=BFS,
            verifier=pool,
            attempts=2,
            config=SearchConfig(tactic_timeout_s=0.5),
            on_progress=lambda r: seen.append((r.target.display, r.expansions, r.done)),
        )
    assert report.error is None
    assert [(r.target.display, r.proved) for r in report.results] == [
        ("swap", True),
        ("stuck", False),
    ]
    swap, stuck = report.results
    assert swap.attempts == 1 and swap.expansions == 3 and swap.reasons == {"proved": 1}
    assert stuck.attempts == 2 and stuck.reasons == {"exhausted": 2}  # two searches
    assert "theorem swap (a b : ℕ) (h : a = b) : b = a := by\n  symm\n  exact h\n" in report.text
    assert "theorem stuck : (1 : ℕ) = 2 := by\n  sorry" in report.text
    assert ("swap", 3, True) in seen and ("swap", 1, False) in seen


pytest.importorskip("prover.models.openai_backend", reason="model backends not in this build")
from serving import ScriptedOpenAI, scripted_openai  # noqa: E402

STEP_MODEL = "ByteDance-Seed/BFS-Prover-V2-7B"
ANSWERS = {ROOT: ["symm", "exact h.symm"], FLIPPED: ["exact h"], STUCK: ["norm_num"]}
LOGPROBS = {"symm": -0.5, "exact h.symm": -0.1, "exact h": -0.2, "norm_num": -0.3}


def prove_by_search(tmp_path: Path, *extra: str, api_base: str = "http://127.0.0.1:9/v1"):
    repl = shlex.join(repl_command(rules_file(tmp_path, FILE_GRAPH)).argv)
    return run_prover(
        "prove", str(tmp_path / "f.lean"), "--search", "best-first", "--backend", "openai",
        "--model", STEP_MODEL, "--api-base", api_base, "--sandbox", "none", "--repl", repl,
        *extra,
    )  # fmt: skip


def test_cli_prove_by_search_writes_back_in_place(tmp_path) -> None:
    (tmp_path / "f.lean").write_text(FILE)
    server = ScriptedOpenAI(ANSWERS, default="bad", logprobs=LOGPROBS)
    with scripted_openai(server) as url:
        result = prove_by_search(
            tmp_path, "--in-place", "--json", "--expansions", "5", "--tactics-per-state", "2",
            "--attempts", "2", api_base=url,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr  # `stuck` keeps its sorry
    report = json.loads(result.stdout)
    by_name = {t["name"]: t for t in report["theorems"]}
    assert by_name["swap"]["proved"] and by_name["swap"]["attempts"] == 1
    assert by_name["swap"]["expansions"] == 2
    assert not by_name["stuck"]["proved"] and by_name["stuck"]["attempts"] == 2
    text = (tmp_path / "f.lean").read_text()
    assert "b = a := by\n  symm\n  exact h\n" in text
    assert "theorem stuck : (1 : ℕ) = 2 := by\n  sorry" in text
    assert (tmp_path / "f.lean.bak").read_text() == FILE
    bodies = [r for r in server.requests if r["prompt"].endswith(":::")]
    assert bodies and all(r["n"] == 2 and r.get("logprobs") for r in bodies)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--rounds", "2"), "--rounds does not apply to --search"),
        (("--no-feedback",), "--feedback does not apply to --search"),
        (("--feedback",), "--feedback does not apply to --search"),
        (("--verifier", "http://127.0.0.1:9"), "the remote verifier API has no tactic mode"),
        (("--prompt-format", "deepseek-v1.5"), "is a whole-proof format"),
    ],
)
def test_cli_refuses_what_does_not_go_with_search(tmp_path, extra, message) -> None:
    (tmp_path / "f.lean").write_text(FILE)
    result = prove_by_search(tmp_path, *extra)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "f.lean").read_text() == FILE


def test_cli_refuses_search_options_without_search_and_unknown_searches(tmp_path) -> None:
    (tmp_path / "f.lean").write_text(FILE)
    plain = run_prover("prove", str(tmp_path / "f.lean"), "--expansions", "3")
    assert plain.returncode == 2 and "apply only with --search" in plain.stderr
    other = run_prover("prove", str(tmp_path / "f.lean"), "--search", "mcts")
    assert other.returncode == 2 and "unknown search 'mcts'" in other.stderr
    unknown_model = run_prover(
        "prove", str(tmp_path / "f.lean"), "--search", "best-first", "--backend", "openai",
        "--model", "some/whole-proof-model", "--api-base", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert unknown_model.returncode == 2 and "no step-level prompt format" in unknown_model.stderr


def test_bench_search_prints_its_figures() -> None:
    import subprocess

    from conftest import ROOT

    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_search.py"), "--expansions", "30"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    out = result.stdout
    assert re.search(r"bare tactic round trip through the pool: [\d.]+ ms", out)
    assert re.search(r"search's own overhead per expansion: -?[\d.]+ ms \(-?[\d.]+x a bare", out)
    assert re.search(r"1 worker: [\d,.]+ expansions/s", out)
    assert re.search(r"2 workers: [\d,.]+ expansions/s \(2 searches in parallel", out)
