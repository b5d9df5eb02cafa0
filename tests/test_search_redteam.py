"""The step-level proving path attacked as a policy would: tactic texts that read one way in
tactic mode and another as a whole proof, tactics that change the process the whole-proof check
then runs on, proof states shared by searches, merged states, and machinery that fails at the
worst moment. Each test is a finding (it failed before its fix) or an attack that fails; the
FakeRepl tactic table and the scripted step model stand in for Lean and a model."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from prover.errors import MachineryFailure
from prover.lean.extract import plan_check
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.sandbox import ReplCommand
from prover.lean.tactics import banned_tactic, with_heartbeats
from prover.lean.verdict import CheckItem, Verdict
from prover.prove.search import (
    SearchConfig,
    SearchProblem,
    assemble_proof,
    best_first_search,
    clean_tactic,
    partial_result,
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
BFS = get_step_format("bfs-prover")
BASE_GRAPH = {
    "states": {"s0": [ROOT], "s1": [FLIPPED]},
    "edges": {
        "s0": {"symm": "s1", "exact h.symm": "proved", "slow": {"sleep_s": 1e9}},
        "s1": {"exact h": "proved"},
    },
}
CANARY_FAILS = {"match": "prover_canary_check", "exit": 1}


def graph_with(**edges: dict) -> dict:
    graph = json.loads(json.dumps(BASE_GRAPH))
    for state, more in edges.items():
        graph["edges"].setdefault(state, {}).update(more)
    return graph


def rules_file(tmp_path: Path, graph: dict, rules=()) -> Path:
    path = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.json"
    path.write_text(json.dumps({"rules": list(rules), "tactic_graph": graph}))
    return path


def repl_command(rules: Path) -> ReplCommand:
    return ReplCommand((sys.executable, str(FAKE_REPL), "script", str(rules)))


def make_pool(tmp_path: Path, graph: dict, rules=(), **config) -> ReplPool:
    config.setdefault("workers", 1)
    config.setdefault("timeout", 10.0)
    config.setdefault("machinery_backoff_s", 0.01)
    command = repl_command(rules_file(tmp_path, graph, rules))
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(command))


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


def search(pool, script: dict, **config):
    config.setdefault("tactic_timeout_s", 0.5)
    model = ScriptedStepModel(script)
    return best_first_search(
        PROBLEM, backend=model, step_format=BFS, verifier=pool, config=SearchConfig(**config)
    )


class SpyVerifier:
    """The pool, with every session opened and every whole proof judged recorded; `after_check`
    runs once a check is answered (a test's way to break the machinery right then)."""

    def __init__(self, pool: ReplPool, after_check=None) -> None:
        self.pool = pool
        self.after_check = after_check
        self.sessions: list[tuple[str, str, str]] = []
        self.items: list[CheckItem] = []

    def tactic_session(self, header: str, formal_statement: str, *, context: str = ""):
        self.sessions.append((header, formal_statement, context))
        return self.pool.tactic_session(header, formal_statement, context=context)

    def check(self, item: CheckItem) -> Verdict:
        self.items.append(item)
        verdict = self.pool.check(item)
        if self.after_check is not None:
            self.after_check()
        return verdict


# -- finding: a process death while rebuilding a path was a verdict, with no known-good check --


def test_a_rebuild_that_dies_after_a_timeout_restart_runs_the_known_good_check(tmp_path) -> None:
    """The machinery breaks after a timeout (every process now dies on any tactic, and a
    known-good check fails too): that is a MachineryFailure, not a dead branch. Before the
    fix the death while rebuilding `symm` marked the state lost without any known-good check,
    and a search over such machinery ended `exhausted`, the model's failure."""
    armed = tmp_path / "broken"
    graph = graph_with(s0={"symm": {"to": "s1", "exit": 1, "exit_if": str(armed)}})
    rules = [{**CANARY_FAILS, "exit_if": str(armed)}]
    with make_pool(tmp_path, graph, rules) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        mid = s.run(s.root, "symm").state
        assert mid is not None
        armed.touch()
        assert s.run(s.root, "slow", timeout=0.5).reason == "timeout"  # a new process, no check
        with pytest.raises(MachineryFailure, match="known-good check failed"):
            s.run(mid, "exact h")  # `symm` is sent again to rebuild `mid`: the process dies


def test_a_transient_death_while_rebuilding_is_not_a_dead_branch(tmp_path) -> None:
    """The rebuilding tactic dies once (a transient failure): a new process, a known-good
    check, the path again, and the tactic runs. Before the fix the state was lost for good."""
    armed, once = tmp_path / "armed", tmp_path / "died-once"
    symm = {"to": "s1", "exit": 1, "exit_if": str(armed), "exit_once": str(once)}
    with (
        make_pool(tmp_path, graph_with(s0={"symm": symm})) as pool,
        pool.tactic_session(HEADER, STATEMENT) as s,
    ):
        mid = s.run(s.root, "symm").state
        assert mid is not None
        armed.touch()
        assert s.run(s.root, "slow", timeout=0.5).reason == "timeout"
        done = s.run(mid, "exact h")
        assert done.outcome == "proved" and done.state is not None
        assert done.state.tactics == ("symm", "exact h")
        assert once.exists()


def test_a_rebuild_that_dies_twice_after_a_passing_known_good_check_is_lost(tmp_path) -> None:
    """The rule's other half: it died twice, the known-good check passed in between: a dead
    branch (and the session goes on)."""
    armed = tmp_path / "armed"
    graph = graph_with(s0={"symm": {"to": "s1", "exit": 1, "exit_if": str(armed)}})
    with make_pool(tmp_path, graph) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        mid = s.run(s.root, "symm").state
        assert mid is not None
        armed.touch()
        assert s.run(s.root, "slow", timeout=0.5).reason == "timeout"
        lost = s.run(mid, "exact h")
        assert (lost.outcome, lost.reason) == ("failed", "lost")
        assert "failed again in a new process" in lost.detail
        assert s.run(s.root, "exact h.symm").outcome == "proved"


def test_a_search_on_machinery_that_broke_mid_search_stops_as_machinery(tmp_path) -> None:
    """The same through the search: the verdict the failure rules give, with the search so far;
    never `exhausted`."""
    armed = tmp_path / "broken"
    graph = graph_with(
        s0={"symm": {"to": "s1", "exit": 1, "exit_if": str(armed)}},
        s1={"arm": {"to": "s1", "sleep_s": 1e9}},  # hangs: the process is replaced
    )
    rules = [{**CANARY_FAILS, "exit_if": str(armed)}]

    class Arming(ScriptedStepModel):
        def generate(self, prompts, params):
            if len(self.prompts) == 1:
                armed.touch()  # the machinery breaks as the second expansion begins
            return super().generate(prompts, params)

    model = Arming({ROOT: [("symm", -0.1)], FLIPPED: [("arm", -0.1), ("exact h", -0.2)]})
    with make_pool(tmp_path, graph, rules) as pool, pytest.raises(MachineryFailure) as failure:
        best_first_search(
            PROBLEM, backend=model, step_format=BFS, verifier=pool,
            config=SearchConfig(tactic_timeout_s=0.5),
        )  # fmt: skip
    partial = partial_result(failure.value)
    assert partial is not None and partial.stopped == "machinery" and not partial.proved


# -- finding: an accepted proof was lost when the process could not be taken back ------------


def test_an_accepted_proof_survives_a_failure_to_take_the_process_back(tmp_path) -> None:
    """The whole-proof check accepts; then no process can be started for the session again.
    The search is over: it needs no process. Before the fix `lent()` took one back at once,
    the MachineryFailure of that start escaped the search, and the accepted proof was lost
    (`prove --search` reported the machinery, kept no proof)."""
    broken = tmp_path / "broken"
    rules = [{"match": "by sorry", "exit": 1, "exit_if": str(broken)}]
    # recycle_after=1: the checked process retires, so a session needs a new one
    with make_pool(tmp_path, BASE_GRAPH, rules, recycle_after=1) as pool:
        spy = SpyVerifier(pool, after_check=broken.touch)
        result = search(pool=spy, script={ROOT: [("symm", -0.1)], FLIPPED: [("exact h", -0.1)]})
    assert result.proved and result.stopped == "proved"
    assert result.verdict is not None and result.verdict.accepted and result.verdict.replayed


def test_after_a_rejected_check_the_search_takes_a_process_back_and_goes_on(tmp_path) -> None:
    """The lazy taking-back still happens when the search goes on: the next tactic gets a
    process (here a new one: the checked one retired), its states rebuilt there."""
    reject = {
        "match": "exact h.symm",
        "anchored": True,
        "response": {
            "messages": [{"severity": "error", "pos": {"line": 1, "column": 2}, "data": "no"}]
        },
    }
    with make_pool(tmp_path, BASE_GRAPH, [reject], recycle_after=1) as pool:
        script = {ROOT: [("symm", -0.1), ("exact h.symm", -0.2)], FLIPPED: [("exact h", -0.1)]}
        result = search(pool, script)
        assert pool.stats.tactic_replays == 1  # `symm`, sent again in the new process
    assert result.proved and result.rejected == 1 and result.tactics == ("symm", "exact h")


def test_a_failure_to_take_the_process_back_when_the_search_goes_on_is_machinery(
    tmp_path,
) -> None:
    broken = tmp_path / "broken"
    rules = [
        {"match": "by sorry", "exit": 1, "exit_if": str(broken)},
        {
            "match": "exact h.symm",
            "anchored": True,
            "response": {
                "messages": [{"severity": "error", "pos": {"line": 1, "column": 2}, "data": "no"}]
            },
        },
    ]
    script = {ROOT: [("exact h.symm", -0.1), ("symm", -0.2)], FLIPPED: [("exact h", -0.1)]}
    with make_pool(tmp_path, BASE_GRAPH, rules, recycle_after=1) as pool:
        spy = SpyVerifier(pool, after_check=broken.touch)
        with pytest.raises(MachineryFailure) as failure:
            search(spy, script)
    partial = partial_result(failure.value)
    assert partial is not None and partial.stopped == "machinery" and partial.rejected == 1


# -- finding: the whole-proof reading of the path could be other text than the path ----------

FENCED = "exact h.symm /-\n```lean\n  exact h\n```\n-/"


def test_a_markdown_fence_in_a_comment_would_be_judged_instead_of_the_path() -> None:
    """Why the search checks its proof's reading: the verifier's extraction of a model's answer
    (a ```lean block wins over the text around it) reads the assembled path `exact h.symm`
    plus a comment as the comment's `exact h`."""
    proof = assemble_proof([FENCED])
    plan = plan_check(CheckItem("t", HEADER, STATEMENT, proof))
    assert "exact h.symm" not in plan.code and "exact h" in plan.code
    assert banned_tactic(with_heartbeats(FENCED, 1000), STATEMENT) is None  # the scan passes it


def test_a_path_the_verifier_would_read_as_other_text_is_never_judged_or_reported(
    tmp_path,
) -> None:
    """Tactic mode runs `exact h.symm` and a comment; the whole-proof check would have judged
    (and `prove --search` written back) the `exact h` inside the comment's fence, while the
    search reported the path as the proof. Now such a path is refused before the check."""
    graph = graph_with(s0={FENCED: "proved"})
    with make_pool(tmp_path, graph) as pool:
        spy = SpyVerifier(pool)
        result = search(spy, {ROOT: [(FENCED, -0.1)]})
    assert not result.proved and result.rejected == 1
    assert spy.items == []  # nothing but the path itself is ever judged


@pytest.mark.parametrize(
    "tactics",
    [
        ["symm", "exact h"],
        ["constructor\n· simp\n· exact h -- done"],
        ["have h2 : a = b := by\n  exact h", "exact h2.symm"],
        ["simp only [h] at *; rfl", "all_goals (first | rfl | simp)"],
        ["case inl => simp\n/- a block\ncomment -/\nexact h"],
        ["exact (h ▸ rfl : b = a) -- ∀ ∃ λ"],
        ['exact "multi\nline string"'],
    ],
)
def test_ordinary_paths_are_read_exactly_as_assembled(tactics: list[str]) -> None:
    """The guard costs nothing on real paths: the verifier reads each as the assembled block."""
    cleaned = [clean_tactic(t) or "" for t in tactics]
    proof = assemble_proof(cleaned)
    plan = plan_check(CheckItem("t", HEADER, STATEMENT, proof))
    assert plan.helpers == "" and plan.body == " " + proof


# -- attacks that fail -------------------------------------------------------------------------


def test_a_tactic_that_changes_the_process_cannot_get_its_proof_accepted(
    tmp_path, request_log
) -> None:
    """A tactic whose meta effect makes the process's own statement check pass for anything
    (past the scan: the double says it did), then a whole proof that proves another statement,
    judged on that very process (lent back by the session). The in-process check is fooled;
    the kernel replay in a fresh process is not, and it runs for search results."""
    graph = graph_with(s0={"poison": {"to": "proved", "neuter_process": True}})
    rules = [{"match": "poison", "statement_mismatch": True}]
    script = {ROOT: [("poison", -0.1)]}
    with make_pool(tmp_path, graph, rules, replay=False) as pool:
        unguarded = search(pool, script)
    assert unguarded.proved  # what the replay rung is for
    with make_pool(tmp_path, graph, rules) as pool:
        result = search(pool, script)
        assert pool.stats.replays == 1
    assert not result.proved and result.rejected == 1
    rows = request_log()
    tactic_pids = {pid for pid, r in rows if "tactic" in r}
    check_pids = {pid for pid, r in rows if "poison" in r.get("cmd", "")}
    assert tactic_pids <= check_pids  # the check ran where the tactic had run


def test_every_text_sent_in_tactic_mode_is_the_text_scanned(tmp_path, request_log) -> None:
    """What the scan reads is exactly what the REPL gets (the heartbeat wrapper included), for
    tactics that try `in` clauses, their own options, meta code, sorry and line breaks."""
    attempts = [
        "set_option debug.skipKernelTC true in exact h.symm",
        "open Lean Elab Tactic in run_tac pure ()",
        "exact by_elab pure (Lean.mkConst ``rfl)",
        "exact h.symm <;> sorry",
        "exact h.symm\naxiom bad : False",
        "exact h.symm\n@[implemented_by x] def y := 1",
        "simp -- hidden\u2028run_tac pure ()",  # a line break only Python sees
        "exact h.symm\nnamespace Foo",
        "symm",
    ]
    with make_pool(tmp_path, BASE_GRAPH) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        outcomes = [s.run(s.root, t).outcome for t in attempts]
    assert outcomes == ["banned"] * 8 + ["open"]
    sent = [r["tactic"] for _, r in request_log() if "tactic" in r]
    assert sent == [with_heartbeats("symm", 200_000)]
    assert all(banned_tactic(text, STATEMENT) is None for text in sent)


def test_merging_by_goal_text_costs_completeness_never_soundness(tmp_path) -> None:
    """Two states print alike but differ underneath (`t1` leaves a context Lean rejects the
    whole proof over, `t2` one it accepts): the second is merged into the first, the path
    through the first is judged as a whole and rejected; nothing is reported proved."""
    graph = {
        "states": {"s0": [ROOT], "a": [FLIPPED], "b": [FLIPPED]},
        "edges": {"s0": {"t1": "a", "t2": "b"}, "a": {"fin": "proved"}, "b": {"fin": "proved"}},
    }
    reject_t1 = {
        "match": "t1",
        "anchored": True,
        "response": {
            "messages": [{"severity": "error", "pos": {"line": 1, "column": 2}, "data": "no"}]
        },
    }
    with make_pool(tmp_path, graph, [reject_t1]) as pool:
        result = search(pool, {ROOT: [("t1", -0.1), ("t2", -0.2)], FLIPPED: [("fin", -0.1)]})
    assert (result.stopped, result.proved, result.merged, result.rejected) == (
        "exhausted", False, 1, 1,
    )  # fmt: skip


def test_states_survive_lending_the_process_to_another_search(tmp_path) -> None:
    """While search A lends its process (for a whole-proof check), search B takes it and makes
    its own states there. A's states, taken back, are still A's: the REPL's proof state ids
    only grow, and a process that went away (recycled here) is never taken for A's."""
    other = "theorem u (c : ℕ) : c = c := by"
    graph = json.loads(json.dumps(BASE_GRAPH))
    graph["states"]["u0"] = ["c : ℕ\n⊢ c = c"]
    graph["states"]["u1"] = ["c : ℕ\n⊢ c + 0 = c"]
    graph["edges"]["u0"] = {"symm": "u1"}
    graph["roots"] = [{"match": "theorem u", "state": "u0"}]
    for recycle_after in (1000, 3):
        with (
            make_pool(tmp_path, graph, recycle_after=recycle_after) as pool,
            pool.tactic_session(HEADER, STATEMENT) as a,
        ):
            mid = a.run(a.root, "symm").state
            assert mid is not None
            with a.lent(), pool.tactic_session(HEADER, other) as b:
                for _ in range(3):
                    step = b.run(b.root, "symm").state
                    assert step is not None and step.goals == ("c : ℕ\n⊢ c + 0 = c",)
            again = a.run(a.root, "symm")
            assert again.state is not None and again.state.goals == (FLIPPED,)
            done = a.run(mid, "exact h")
            assert done.outcome == "proved" and done.state is not None
            assert done.state.tactics == ("symm", "exact h")
            assert pool.stats.tactic_replays == (0 if recycle_after == 1000 else 1)


def test_the_check_judges_the_statement_and_context_the_search_ran_on(tmp_path) -> None:
    """Across a file (the first proof written in before the second target is searched), each
    whole-proof check uses exactly the header, statement and context of its own session."""
    text = (
        "import Mathlib\n\ntheorem t (a b : ℕ) (h : a = b) : b = a := by\n  sorry\n\n"
        "theorem t2 (a b : ℕ) (h : a = b) : b = a := by\n  sorry\n"
    )
    graph = json.loads(json.dumps(BASE_GRAPH))
    graph["roots"] = [{"match": "theorem t2", "state": "s0"}]
    with make_pool(tmp_path, graph) as pool:
        spy = SpyVerifier(pool)
        report = search_text(
            text, backend=ScriptedStepModel({ROOT: [("symm", -0.1)], FLIPPED: [("exact h", -1)]}),
            step_format=BFS, verifier=spy, config=SearchConfig(tactic_timeout_s=0.5),
        )  # fmt: skip
    assert [r.proved for r in report.results] == [True, True]
    judged = [(i.header, i.formal_statement, i.context) for i in spy.items]
    assert judged == spy.sessions
    assert "symm\n  exact h" in spy.items[1].context  # the first proof, as written back
    assert report.text.count("  symm\n  exact h\n") == 2


# -- prove --search: machinery failures keep what was found ------------------------------------

FILE = """import Mathlib

theorem swap (a b : ℕ) (h : a = b) : b = a := by
  sorry

theorem stuck : (1 : ℕ) = 2 := by
  sorry
"""


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_cli_a_machinery_failure_exits_2_and_keeps_the_proofs_found(tmp_path) -> None:
    pytest.importorskip("prover.models.openai_backend", reason="model backends not in this build")
    from serving import ScriptedOpenAI, scripted_openai

    graph = json.loads(json.dumps(BASE_GRAPH))
    rules = [{"match": "theorem stuck", "exit": 1}]  # its statement kills every process
    repl = shlex.join(repl_command(rules_file(tmp_path, graph, rules)).argv)
    (tmp_path / "f.lean").write_text(FILE)
    server = ScriptedOpenAI(
        {ROOT: ["symm"], FLIPPED: ["exact h"]}, default="bad", logprobs={"symm": -0.1}
    )
    with scripted_openai(server) as url:
        result = run_prover(
            "prove", str(tmp_path / "f.lean"), "--search", "best-first", "--backend", "openai",
            "--model", "ByteDance-Seed/BFS-Prover-V2-7B", "--api-base", url, "--sandbox",
            "none", "--repl", repl, "--in-place", "--json", "--tactics-per-state", "1",
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "verifier machinery failed (not a verdict)" in json.loads(result.stdout)["error"]
    text = (tmp_path / "f.lean").read_text()
    assert "b = a := by\n  symm\n  exact h\n" in text
    assert "theorem stuck : (1 : ℕ) = 2 := by\n  sorry" in text
