"""The regression gate on constructed runs, and the validating results.json reader."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.gate import (
    GateError,
    ResultsError,
    check_baseline,
    compare_runs,
    load_results,
    validate_results,
)
from harness.metrics import bootstrap_interval, default_ks, mean_pass_at_k, pass_at_k


def results_doc(
    counts: dict[str, int] | list[int],
    *,
    n: int = 8,
    suite: str = "minif2f-test",
    split: str = "test",
    model: str = "org/prover-7b",
    label: str | None = None,
) -> dict[str, Any]:
    """A results.json document as `prover eval` writes it, from accepted counts per problem."""
    if isinstance(counts, list):
        counts = {f"p{i:03d}": c for i, c in enumerate(counts)}
    pairs = [(n, c) for c in counts.values()]
    ks = default_ks(n)

    def interval(k: int) -> list[float]:
        return list(bootstrap_interval([pass_at_k(n, c, k) for _, c in pairs], resamples=100))

    pass_at = {str(k): mean_pass_at_k(pairs, k) for k in ks}
    return {
        "suite": suite,
        "split": split,
        "n": n,
        "pass_at_k": pass_at,
        "precision": pass_at["1"],
        "coverage": pass_at[str(n)],
        "ci": {
            "pass_at_k": {str(k): interval(k) for k in ks},
            "precision": interval(1),
            "coverage": interval(n),
        },
        "problems": [
            {"name": name, "n": n, "c": c, "distinct_accepted": min(c, 1)}
            for name, c in counts.items()
        ],
        "provenance": {"model": model, "label": label, "seed": 0, "lean_version": None},
        "timings": {},
        "cache_hit_rate": 0.0,
    }


def test_the_constructed_documents_follow_the_schema() -> None:
    validate_results(results_doc([0, 3, 8]))


# --- the gate --------------------------------------------------------------------------------


def test_a_real_drop_in_pass_at_1_fails() -> None:
    baseline = results_doc([6] * 150 + [0] * 50)
    candidate = results_doc([3] * 150 + [0] * 50)  # every problem still solved at least once
    result = compare_runs(candidate, baseline, 0.02, resamples=2000)
    pass1, coverage = result.metrics
    assert pass1.metric == "pass@1" and pass1.failed
    assert pass1.drop == pytest.approx(150 * 3 / 8 / 200)
    assert pass1.lower_bound > 0.1
    assert coverage.metric == "coverage (pass@8)" and not coverage.failed
    assert coverage.drop == 0.0
    assert result.failed
    text = result.render()
    assert text.splitlines()[0].endswith("200 problems, n=8, max drop 2.0 pp, 95% confidence")
    assert "FAIL" in text.splitlines()[2] and "ok" in text.splitlines()[3]
    assert "FAILED: pass@1 dropped 28.1 pp (more than 2.0 pp; 95% lower bound" in text
    assert result.lost == () and result.gained == ()


def test_a_real_drop_in_coverage_fails_with_the_default_resamples() -> None:
    baseline = results_doc([1] * 100)
    candidate = results_doc([1] * 70 + [0] * 30)
    result = compare_runs(candidate, baseline, 0.02)
    assert [m.failed for m in result.metrics] == [True, True]
    assert result.metrics[1].drop == pytest.approx(0.3)
    assert len(result.lost) == 30


def test_small_random_differences_pass() -> None:
    rng = random.Random(1)
    base = [rng.randrange(9) for _ in range(200)]
    # a fifth of the problems move by one accepted sample, either way
    cand = [min(8, max(0, c + rng.choice((-1, 1)))) if rng.random() < 0.2 else c for c in base]
    assert cand != base
    result = compare_runs(results_doc(cand), results_doc(base), 0.02, resamples=2000)
    assert not result.failed
    assert all(abs(m.drop) < 0.02 for m in result.metrics)
    assert result.render().splitlines()[-1].startswith("passed")


def test_runs_of_the_same_model_rarely_fail() -> None:
    """Two runs drawn from the same per-problem solve rates, gated with no drop allowed: only the
    bootstrap stands between noise and a failure, and its false alarms stay near 5% per metric
    (about half of these pairs show some drop; 2 of 30 are significant)."""
    failures = dropped = 0
    for seed in range(30):
        rng = random.Random(seed)
        rates = [rng.random() ** 2 for _ in range(60)]

        def draw(rates: list[float] = rates, rng: random.Random = rng) -> list[int]:
            return [sum(rng.random() < p for _ in range(8)) for p in rates]

        result = compare_runs(results_doc(draw()), results_doc(draw()), 0.0, resamples=1000)
        failures += result.failed
        dropped += any(m.drop > 0 for m in result.metrics)
    assert dropped >= 10
    assert failures <= 5


def test_a_large_drop_on_few_problems_is_not_significant() -> None:
    baseline = results_doc({"a": 8, "b": 8, "c": 8})
    candidate = results_doc({"a": 8, "b": 8, "c": 0})
    result = compare_runs(candidate, baseline, 0.02)
    for metric in result.metrics:
        assert metric.drop == pytest.approx(1 / 3)  # far above max_drop ...
        assert metric.lower_bound <= 0.0  # ... but 2 problems in 3 unchanged: not significant
        assert not metric.failed
    assert not result.failed
    assert result.lost == ("c",)


def test_a_significant_drop_within_max_drop_passes() -> None:
    baseline = results_doc([8] * 400)
    candidate = results_doc([8] * 394 + [0] * 6)
    result = compare_runs(candidate, baseline, 0.02, resamples=500)
    coverage = result.metrics[1]
    assert coverage.lower_bound > 0.0 and coverage.drop == pytest.approx(0.015)
    assert not result.failed
    assert compare_runs(candidate, baseline, 0.01, resamples=500).failed


def test_lost_and_gained_problems_are_listed() -> None:
    baseline = results_doc({"a": 2, "b": 0, "c": 3, "d": 0, "e": 1})
    candidate = results_doc({"a": 0, "b": 1, "c": 3, "d": 0, "e": 0})
    result = compare_runs(candidate, baseline, 0.02, resamples=500)
    assert result.lost == ("a", "e")
    assert result.gained == ("b",)
    lines = result.lines()
    assert "  lost (2): a, e" in lines and "  gained (1): b" in lines


def test_improvements_pass() -> None:
    result = compare_runs(results_doc([8] * 50), results_doc([0] * 50), 0.0, resamples=500)
    assert not result.failed
    assert result.metrics[0].drop == -1.0 and len(result.gained) == 50


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (results_doc([3, 4], suite="minif2f-valid"), "different suites: minif2f-valid"),
        (results_doc([3, 4], split="valid"), "different splits: valid"),
        (results_doc([3, 4], n=16), "n=16 against baseline n=8"),
        (results_doc({"p000": 3, "x": 4}), "problem sets differ: 1 (x) only in this run, 1 (p001)"),
        (results_doc([3]), "0 only in this run, 1 (p001) only in the baseline"),
    ],
)
def test_incomparable_runs_are_refused(candidate: dict, message: str) -> None:
    with pytest.raises(GateError) as caught:
        compare_runs(candidate, results_doc([3, 4]), 0.02)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("max_drop", [-0.01, 1.5, float("nan")])
def test_max_drop_must_be_a_fraction(max_drop: float) -> None:
    with pytest.raises(GateError, match="--max-drop"):
        compare_runs(results_doc([1]), results_doc([1]), max_drop)


def test_check_baseline_before_sampling() -> None:
    baseline = results_doc({"a": 1, "b": 2})
    check_baseline(baseline, suite="minif2f-test", n=8, split="test", problems=["b", "a"])
    # a baseline run over all splits (split null) compares by its problems
    check_baseline({**baseline, "split": None}, suite="minif2f-test", n=8, split="test")
    with pytest.raises(GateError, match="1 .c. only in this run"):
        check_baseline(baseline, suite="minif2f-test", n=8, problems=["a", "b", "c"])


SEARCH = {
    "algorithm": "best-first",
    "expansions": 100,
    "tactics_per_state": 8,
    "length_exponent": 2.0,
    "time_s": 600.0,
    "tactic_timeout_s": 60.0,
    "heartbeats": 200000,
    "prompt_format": "bfs-prover",
}


def with_search(doc: dict[str, Any], search: dict[str, Any], used: int = 5) -> dict[str, Any]:
    """A search run's results.json: its settings plus the outcomes (expansions used, stops)."""
    summary = {**search, "expansions_used": {"mean": used, "max": used}, "stopped": {"proved": 1}}
    return {**doc, "search": summary}


def test_a_search_run_is_gated_only_against_a_search_baseline_with_its_settings() -> None:
    whole = results_doc([3, 4])
    search = with_search(results_doc([3, 4]), SEARCH)
    # same settings, different outcomes: comparable
    compare_runs(with_search(results_doc([3, 4]), SEARCH, used=9), search, 0.02)
    compare_runs(whole, results_doc([3, 4]), 0.02)
    with pytest.raises(GateError, match="a search run against a whole-proof baseline"):
        compare_runs(search, whole, 0.02)
    with pytest.raises(GateError, match="a whole-proof run against a search baseline"):
        compare_runs(whole, search, 0.02)
    wider = with_search(results_doc([3, 4]), {**SEARCH, "expansions": 400})
    with pytest.raises(GateError, match="expansions=400 against baseline expansions=100"):
        compare_runs(wider, search, 0.02)
    other_format = {**SEARCH, "prompt_format": "internlm-step"}
    with pytest.raises(GateError, match="prompt_format=internlm-step"):
        check_baseline(search, suite="minif2f-test", n=8, search=other_format)
    with pytest.raises(GateError, match="whole-proof run against a search baseline"):
        check_baseline(search, suite="minif2f-test", n=8)


# --- load_results ----------------------------------------------------------------------------


def write_run(directory: Path, doc: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(doc))
    return directory


def test_load_results_reads_a_run_directory_or_its_file(tmp_path: Path) -> None:
    doc = results_doc([1, 2])
    run = write_run(tmp_path / "run", doc)
    assert load_results(run) == doc
    assert load_results(run / "results.json") == doc


def test_load_results_missing(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"nope: no such run directory or results\.json$"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    # a GateError too: `prover eval --baseline` catches one kind of error
    with pytest.raises(GateError, match=r"empty: no results\.json \(is the run finished\?\)$"):
        load_results(tmp_path / "empty")


def test_load_results_bad_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"suite": ')
    with pytest.raises(ResultsError, match=r"results\.json: not valid JSON \(.*line 1\)$"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_bytes(b'{"suite": "\xff"}')
    with pytest.raises(ResultsError, match="not UTF-8"):
        load_results(tmp_path)


def broken(change: Any) -> dict:
    doc = results_doc([1, 2])
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "expected a JSON object"),
        (broken(lambda d: d.pop("coverage")), 'missing key "coverage"'),
        (broken(lambda d: d.update(n=True)), '"n" must be an integer >= 1'),
        (broken(lambda d: d.update(suite="")), '"suite" must be a non-empty string'),
        (broken(lambda d: d["pass_at_k"].update({"16": 0.5})), 'key "16" must be an integer k'),
        (broken(lambda d: d.update(precision=31.0)), '"precision" must be a number from 0 to 1'),
        (broken(lambda d: d["ci"].update(coverage=[0.6, 0.5])), "low 0.6 is above high 0.5"),
        (broken(lambda d: d["ci"].pop("precision")), 'missing key "ci"."precision"'),
        (broken(lambda d: d["problems"][1].update(c=9)), '"problems"[1]: "c"=9 exceeds "n"=8'),
        (broken(lambda d: d["problems"][1].update(name="p000")), 'problem "p000" appears twice'),
        (broken(lambda d: d.update(problems=[])), '"problems" must be a non-empty list'),
        (broken(lambda d: d["provenance"].update(model=3)), '"provenance"."model" must be'),
        (broken(lambda d: d.update(machinery=[])), '"machinery" must be an object'),
        (broken(lambda d: d.update(machinery={"retries": 2})), '"machinery"."crash_rechecks" must'),
        (
            broken(lambda d: d.update(machinery={"retries": -1, "crash_rechecks": 0})),
            '"machinery"."retries" must be an integer >= 0',
        ),  # fmt: skip
        ({"suite": "s", "split": None, "stopped": ""}, '"stopped" must be a non-empty string'),
    ],
)
def test_schema_errors_are_one_line(tmp_path: Path, doc: object, message: str) -> None:
    run = write_run(tmp_path / "run", doc)
    with pytest.raises(ResultsError) as caught:
        load_results(run)
    text = str(caught.value)
    assert text.startswith(f"{run / 'results.json'}: ")
    assert message in text
    assert "\n" not in text


# --- runs that stopped on a machinery failure ---------------------------------------------------


def stopped_doc(cause: str = "the REPL could not start: lake: error: no such package") -> dict:
    """What `prover eval` writes when it stops on a machinery failure: no metrics."""
    return {"suite": "minif2f-test", "split": "test", "stopped": cause,
            "machinery": {"retries": 3, "crash_rechecks": 0}}  # fmt: skip


def test_a_stopped_run_is_refused_naming_its_cause_and_how_to_finish_it(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", stopped_doc("the REPL could not start:\n lake: error"))
    with pytest.raises(ResultsError) as caught:
        load_results(run)
    assert isinstance(caught.value, GateError)  # the gate refuses it as any unreadable run
    assert str(caught.value) == (
        f"{run / 'results.json'}: the run stopped on a machinery failure (the REPL could not "
        "start: lake: error), so it has no results: finish it with "
        f"`prover eval minif2f-test ... --out {run} --resume`"
    )
    # even with numbers in it, a stopped run is no result
    with pytest.raises(ResultsError, match="stopped on a machinery failure"):
        validate_results({**results_doc([1, 2]), "stopped": "remote verifier answered 503"})


def test_machinery_counts_are_read_when_present() -> None:
    doc = {**results_doc([1, 2]), "machinery": {"retries": 4, "crash_rechecks": 1}}
    validate_results(doc)
    validate_results(results_doc([1, 2]))  # runs from before the counts: accepted


def test_the_cli_refuses_a_stopped_run_as_baseline_and_in_report(tmp_path: Path) -> None:
    from conftest import run_prover

    run = write_run(tmp_path / "stopped", stopped_doc())
    report = run_prover("report", str(run))
    assert report.returncode == 2 and report.stdout == ""
    assert report.stderr.count("\n") == 1 and "stopped on a machinery failure" in report.stderr
    assert "no such package" in report.stderr and "--resume" in report.stderr
    gate = run_prover("eval", "countdown", "--n", "2", "--out", str(tmp_path / "new"),
                      "--baseline", str(run), "--backend", "openai", "--model", "m",
                      "--api-base", "http://127.0.0.1:9")  # fmt: skip
    assert gate.returncode == 2, gate.stderr
    assert gate.stderr.startswith(f"prover: --baseline: {run / 'results.json'}: the run stopped")
    assert gate.stderr.count("\n") == 1 and "Traceback" not in gate.stderr
    assert not (tmp_path / "new").exists()  # refused before sampling
