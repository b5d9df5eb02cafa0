"""`prover eval --search best-first --ray-address local`: each verifier actor runs whole
searches on its own pool, sampling tactics from the generator actors. Lean is the FakeRepl
tactic table and the model the scripted step-level model double, as in test_eval_search.py;
here the double lives in a Ray generator actor. Slow: a local Ray instance starts in seconds."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_eval_search import (
    SCRIPT,
    SeededStepModel,
    lucky_first_search,
    repl_argv,
    results_of,
    search_args,
    suite_file,
)

from prover.errors import MachineryFailure
from prover.prove.search import SearchConfig, SearchProblem, partial_result

from doubles.scripted_step_model import ScriptedStepModel

pytestmark = pytest.mark.slow

# what differs between two runs of the same searches whatever runs them: the clocks, and the
# bytes stored (a time's digits vary)
CLOCKS = {"time_s", "verify_s", "started_at", "finished_at", "wall_s", "store_bytes_per_sample"}


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    """One local Ray instance for the module (`prover eval --ray-address local` starts it in
    this process, as the CLI does), shut down after it. Ray is imported here, not when the
    default suite collects the module."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'prover[ray]')")
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def eval_here(monkeypatch, capsys):
    """`prover eval ...` through the real CLI in this process, the model being `model` (built
    in each generator actor from a pickled copy): (exit code, stderr)."""

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


def without_clocks(value: object) -> object:
    """`value` with every wall-clock figure dropped (and the Ray address, which says where it
    ran): what must be the same for the same searches."""
    if isinstance(value, dict):
        return {
            k: without_clocks(v)
            for k, v in value.items()
            if k not in CLOCKS and k not in ("timings", "ray_address")
        }
    if isinstance(value, list):
        return [without_clocks(v) for v in value]
    return value


def stored(run_dir: Path) -> dict[tuple[str, str, int], dict]:
    lines = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return {(r["type"], r["problem"], r["index"]): without_clocks(r) for r in lines}


def test_searches_on_ray_actors_store_what_a_local_run_stores(tmp_path, eval_here) -> None:
    suite, repl = suite_file(tmp_path), repl_argv(tmp_path)
    lucky = lucky_first_search()  # coin: search 0 proves it (its seed reached the model)
    here, there = tmp_path / "here", tmp_path / "ray"
    code, err = eval_here(SeededStepModel(lucky), *search_args(suite, here, repl))
    assert code == 0, err
    code, err = eval_here(
        SeededStepModel(lucky), *search_args(suite, there, repl, "--ray-address", "local",
                                             "--ray-generators", "2"),
    )  # fmt: skip
    assert code == 0, err
    local, remote = results_of(here), results_of(there)
    assert remote["provenance"]["ray_address"] == "local"
    assert without_clocks(remote) == without_clocks(local)
    assert [(r["name"], r["c"]) for r in remote["problems"]] == [
        ("swap", 2), ("stuck", 0), ("coin", 1),
    ]  # fmt: skip
    assert remote["search"]["stopped"] == {"proved": 3, "exhausted": 3}
    # every sample and verdict line the same, the search's own figures included: each
    # tactic's log-probability came through (none missing), the assembled proofs are equal
    assert stored(there) == stored(here)
    samples = [v for k, v in stored(there).items() if k[0] == "sample"]
    assert len(samples) == 6 and all(s["search"]["missing_logprobs"] == 0 for s in samples)
    assert stored(there)[("sample", "swap", 0)]["completion"] == "by\n  symm\n  exact h"
    assert (there / "accepted.jsonl").read_text() == (here / "accepted.jsonl").read_text()


def test_resume_on_ray_runs_only_the_searches_not_stored(tmp_path, eval_here) -> None:
    """A local run cut short (its last verdict line torn), resumed on Ray: the one search not
    finished runs on an actor, and the run ends as the local run of the same seeds did."""
    suite, repl = suite_file(tmp_path, ["swap", "coin"]), repl_argv(tmp_path)
    out, whole = tmp_path / "run", tmp_path / "whole"
    one_at_a_time = ("--workers", "1")
    code, err = eval_here(ScriptedStepModel(SCRIPT), *search_args(suite, whole, repl,
                                                                  *one_at_a_time))  # fmt: skip
    assert code == 0, err
    code, err = eval_here(ScriptedStepModel(SCRIPT), *search_args(suite, out, repl,
                                                                  *one_at_a_time))  # fmt: skip
    assert code == 0, err
    samples = out / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:-1]) + lines[-1][:20])
    code, err = eval_here(
        ScriptedStepModel(SCRIPT),
        *search_args(suite, out, repl, *one_at_a_time, "--resume", "--ray-address", "local"),
    )
    assert code == 0, err
    assert "(3 stored best-first searches kept)" in " ".join(err.split())
    assert stored(out) == stored(whole)
    assert without_clocks(results_of(out)["problems"]) == without_clocks(
        results_of(whole)["problems"]
    )


def test_a_machinery_failure_in_an_actor_stops_the_run(tmp_path, eval_here) -> None:
    """The REPL starts once only (the known-good check, on the actor): no search can get a
    process there. The MachineryFailure crosses Ray as itself: the run stops as `stopped`,
    no search is a failed sample, and `--resume` on a working REPL runs them all."""
    good = repl_argv(tmp_path)
    flag = tmp_path / "started-once"
    breaking = f"sh -c 'if [ -e {flag} ]; then exit 1; fi; touch {flag}; exec {good}'"
    out = tmp_path / "run"
    suite = suite_file(tmp_path, ["swap"])
    ray_args = ("--ray-address", "local")
    code, err = eval_here(
        ScriptedStepModel(SCRIPT),
        *search_args(suite, out, breaking, "--recycle-after", "1", *ray_args),
    )
    assert code == 2 and "machinery" in err.strip().splitlines()[-1], err
    assert "Traceback" not in err and "RayTaskError" not in err
    assert results_of(out)["stopped"].startswith("verifier machinery failure: ")
    assert not (out / "samples.jsonl").read_text()
    code, err = eval_here(
        ScriptedStepModel(SCRIPT), *search_args(suite, out, good, "--resume", *ray_args)
    )
    assert code == 0, err
    assert results_of(out)["problems"][0]["c"] == 2


class FailingStepModel(ScriptedStepModel):
    """A step-level model double whose server answers every call with an error."""

    def generate(self, prompts, params):
        from prover.models.errors import ModelBackendError

        raise ModelBackendError("the model server answered 500")


def test_a_model_failure_in_a_generator_actor_stops_the_run_in_one_line(
    tmp_path, eval_here
) -> None:
    out = tmp_path / "run"
    args = search_args(suite_file(tmp_path, ["swap"]), out, repl_argv(tmp_path),
                       "--ray-address", "local")  # fmt: skip
    code, err = eval_here(FailingStepModel(SCRIPT), *args)
    assert code == 2 and "Traceback" not in err
    assert "model failed: the model server answered 500" in " ".join(err.split())
    assert not (out / "samples.jsonl").read_text()


# -- the searcher itself ---------------------------------------------------------------------


class BrokenPool:
    """A verifier whose machinery fails as a search starts (a test double of a pool whose
    REPL is gone)."""

    workers = 1

    def tactic_session(self, header: str, formal_statement: str, *, context: str = ""):
        @contextmanager
        def session():
            raise MachineryFailure("retries spent: the REPL crashed 3 times")
            yield

        return session()

    def check(self, item):  # never reached
        raise AssertionError(item)


def test_a_machinery_failure_crosses_ray_as_itself() -> None:
    import ray

    from harness.ray_engine import RayBackend, RayVerifier, connect
    from prover.step_prompts import BFSProver

    connect("local")
    backend = RayBackend(lambda: ScriptedStepModel(SCRIPT))
    try:
        with RayVerifier(BrokenPool) as verifier:
            searcher = verifier.searcher(backend, BFSProver())
            problem = SearchProblem("swap", "import Mathlib\n", "theorem swap : True := by\n")
            with pytest.raises(MachineryFailure) as caught:
                searcher.search(problem, SearchConfig(expansions=2))
    finally:
        backend.close()
    assert type(caught.value) is MachineryFailure
    assert caught.value.cause == "retries spent: the REPL crashed 3 times"
    assert not isinstance(caught.value, ray.exceptions.RayError)
    partial = partial_result(caught.value)
    # the search so far came along with it (best_first_search sets it, the pickle keeps it)
    assert partial is not None and partial.stopped == "machinery"
    assert partial.detail == "retries spent: the REPL crashed 3 times"
