"""`prover prove` end to end: a scripted model test double, the FakeRepl double, a real pool."""

from __future__ import annotations

import pytest

from prover.lean.pool import ReplPool, VerifierConfig
from prover.prove.loop import prove_text
from prover.prove.targets import find_targets

from conftest import plain_factory
from doubles.scripted_model import ScriptedModel

prompts = pytest.importorskip("prover.prompts", reason="prompt formats not in this build yet")

FILE = """import Mathlib

open Real

namespace Demo

variable (n : ℕ)

theorem already : (1 : ℕ) = 1 := rfl

/-- two plus two -/
theorem easy : (2 : ℕ) + 2 = 4 := by
  sorry

lemma hard (h : n = 3) : n + 1 = 4 := by
  sorry

end Demo

theorem impossible : (1 : ℕ) = 2 := sorry

example : True := by sorry
"""

BAD = {
    "severity": "error",
    "pos": {"line": 2, "column": 2},
    "endPos": None,
    "data": "simp made no progress",
}


def run(fake_repl_script, script, **options):
    command = fake_repl_script([{"match": "-- BAD", "response": {"messages": [BAD]}}])
    model = ScriptedModel(script)
    pool = ReplPool(VerifierConfig(workers=2, timeout=20), transport_factory=plain_factory(command))
    with pool:
        report = prove_text(
            FILE,
            backend=model,
            prompt_format=prompts.get_format("deepseek-v1.5"),
            verifier=pool,
            **options,
        )
    return report, model


def test_targets_are_the_sorries() -> None:
    _, targets = find_targets(FILE)
    assert [t.display for t in targets] == [
        "Demo.easy",
        "Demo.hard",
        "impossible",
        f"example (line {FILE.splitlines().index('example : True := by sorry') + 1})",
    ]
    assert targets[0].doc.startswith("/-- two plus two")


def test_fills_what_it_can_and_nothing_else(fake_repl_script) -> None:
    script = {
        "easy": ["  simp -- BAD\n```", "  norm_num\n```"],
        "hard": ["  omega\n```"],
        "impossible": ["  simp -- BAD\n```"],
        "prover_example_22": ["  trivial\n```"],
    }
    report, model = run(fake_repl_script, script, attempts=2, rounds=2)
    proved = {r.target.display: r.proved for r in report.results}
    assert proved == {
        "Demo.easy": True,
        "Demo.hard": True,
        "impossible": False,
        "example (line 22)": True,
    }
    text = report.text
    assert "theorem easy : (2 : ℕ) + 2 = 4 := by\n  norm_num\n" in text
    assert "lemma hard (h : n = 3) : n + 1 = 4 := by\n  omega\n" in text
    assert "theorem impossible : (1 : ℕ) = 2 := sorry" in text  # never touched when unproved
    assert "theorem already : (1 : ℕ) = 1 := rfl" in text
    assert "example : True := by\n  trivial" in text
    assert "simp -- BAD" not in text  # a rejected candidate is never written
    impossible = next(r for r in report.results if r.target.display == "impossible")
    assert impossible.attempts == 4 and impossible.rounds == 2
    assert impossible.reasons == {"error": 4}
    assert not report.all_proved


def test_feedback_round_shows_lean_errors(fake_repl_script) -> None:
    script = {"impossible": ["  simp -- BAD\n```"]}
    report, model = run(fake_repl_script, script, attempts=1, rounds=2, feedback=True)
    prompts_for_impossible = [
        p for p in model.prompts if "impossible" in (p.text or str(p.messages))
    ]
    assert len(prompts_for_impossible) == 2
    second = prompts_for_impossible[1].text or str(prompts_for_impossible[1].messages)
    assert "simp made no progress" in second


class BrokenModel(ScriptedModel):
    """Fails on its second call, as a model server that goes away would."""

    calls = 0

    def generate(self, prompts, params):
        type(self).calls += 1
        if type(self).calls > 1:
            raise RuntimeError("model server went away")
        return super().generate(prompts, params)


def test_a_model_failure_keeps_the_proofs_already_found(fake_repl_script) -> None:
    command = fake_repl_script()
    pool = ReplPool(VerifierConfig(workers=1, timeout=20), transport_factory=plain_factory(command))
    with pool:
        report = prove_text(
            FILE,
            backend=BrokenModel({"easy": ["  norm_num\n```"]}),
            prompt_format=prompts.get_format("deepseek-v1.5"),
            verifier=pool,
        )
    assert report.error and "model server went away" in report.error
    assert [r.proved for r in report.results] == [True, False, False, False]
    assert [r.attempts > 0 for r in report.results] == [True, False, False, False]
    assert "theorem easy : (2 : ℕ) + 2 = 4 := by\n  norm_num" in report.text


def test_prove_through_a_remote_verifier_matches_local(fake_repl_script) -> None:
    """Contexts (namespace, variables, other sorries) travel with each remote snippet."""
    from prover.lean.remote import RemoteVerifier

    from serving import running_server

    script = {
        "easy": ["  simp -- BAD\n```", "  norm_num\n```"],
        "hard": ["  omega\n```"],
        "impossible": ["  simp -- BAD\n```"],
        "prover_example_22": ["  trivial\n```"],
    }
    local, _ = run(fake_repl_script, script, attempts=2, rounds=1)
    command = fake_repl_script([{"match": "-- BAD", "response": {"messages": [BAD]}}])
    factory = lambda: ReplPool(  # noqa: E731
        VerifierConfig(workers=2, timeout=20), transport_factory=plain_factory(command)
    )
    with running_server(factory) as url, RemoteVerifier(url, timeout=20) as remote:
        far = prove_text(
            FILE,
            backend=ScriptedModel(script),
            prompt_format=prompts.get_format("deepseek-v1.5"),
            verifier=remote,
            attempts=2,
            rounds=1,
        )
    # (a remote batch may judge a candidate or two more before the first accepted one)
    assert [(r.target.display, r.proved) for r in far.results] == [
        (r.target.display, r.proved) for r in local.results
    ]
    assert far.text == local.text


def test_helpers_of_two_proofs_never_collide(fake_repl_script) -> None:
    """Each target is proved against the file with the earlier proofs written in: a helper
    name the file already has (now, or from an earlier proof) is refused."""
    text = (
        "import Mathlib\n\ntheorem t1 : True := by\n  sorry\n\n"
        "theorem t2 : True := by\n  sorry\n\nlemma aux2 : True := trivial\n"
    )
    whole = "lemma {h} : True := trivial\n\ntheorem {t} : True := by\n  exact {h}\n```"
    script = {
        "t1": [whole.format(h="aux", t="t1")],
        "t2": [
            whole.format(h="aux", t="t2"),
            whole.format(h="aux2", t="t2"),
            whole.format(h="aux3", t="t2"),
        ],
    }
    command = fake_repl_script()
    pool = ReplPool(VerifierConfig(workers=1, timeout=20), transport_factory=plain_factory(command))
    with pool:
        report = prove_text(
            text,
            backend=ScriptedModel(script),
            prompt_format=prompts.get_format("deepseek-v1.5"),
            verifier=pool,
            attempts=1,
            rounds=3,
        )
    assert all(r.proved for r in report.results)
    assert report.text.count("lemma aux :") == 1 and report.text.count("lemma aux2 :") == 1
    assert "lemma aux3 : True := trivial\n\ntheorem t2" in report.text
    assert report.results[1].reasons == {"banned": 2, "ok": 1}


def test_write_back_keeps_comments_and_in_prefixes(fake_repl_script) -> None:
    text = (
        "import Mathlib\n\nopen Real in\ntheorem a : pi = pi := by\n  sorry\n\n"
        "-- keep me\n/- and me -/\n\ntheorem b : True := sorry\n-- trailing\n"
    )
    command = fake_repl_script()
    pool = ReplPool(VerifierConfig(workers=1, timeout=20), transport_factory=plain_factory(command))
    model = ScriptedModel({"a": ["  rfl\n```"], "b": ["  trivial\n```"]})
    with pool:
        report = prove_text(
            text,
            backend=model,
            prompt_format=prompts.get_format("deepseek-v1.5"),
            verifier=pool,
            attempts=1,
        )
    assert report.text == text.replace("  sorry\n", "  rfl\n").replace(
        "theorem b : True := sorry", "theorem b : True := by\n  trivial"
    )
    first_prompt = model.prompts[0].text
    assert "open Real in\ntheorem a : pi = pi := by" in first_prompt


def test_helpers_that_would_change_the_rest_of_the_file_are_refused() -> None:
    from prover.prove.loop import helper_clash

    text = "import Mathlib\n\ntheorem later : True := trivial\n"
    assert helper_clash("lemma aux : True := trivial\n\n", text) is None
    assert "clashes" in helper_clash("lemma later : True := trivial\n\n", text)
    for bad in ("open Nat\n\n", "set_option maxHeartbeats 1\n\n", "attribute [-simp] zero_add\n"):
        assert "would change the rest of the file" in helper_clash(bad, text), bad
    # a modifier of the theorem itself is part of the proof, not of the file
    assert helper_clash("set_option maxHeartbeats 400000 in\n", text) is None
