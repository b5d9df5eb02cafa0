"""From a finished run's stored samples to RUN_DIR/results.json and RUN_DIR/accepted.jsonl."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.metrics import bootstrap_mean_intervals, pass_at_k
from harness.store import StoredRun, atomic_file, write_failed, write_json_atomic
from harness.suites import Problem

RESULTS = "results.json"
ACCEPTED = "accepted.jsonl"
CURVE = "pass_at_k.png"


def problem_rows(
    problems: list[Problem], n: int, run: StoredRun, proof_of: Callable[[Problem, str], str]
) -> list[dict[str, Any]]:
    """{name, n, c, distinct_accepted} per problem; distinct = different proofs up to
    whitespace."""
    rows = []
    for problem in problems:
        samples = [run.samples[(problem.name, i)] for i in range(n)]
        accepted = [s for s in samples if s.accepted]
        distinct = {" ".join(proof_of(problem, s.completion).split()) for s in accepted}
        rows.append(
            {"name": problem.name, "n": n, "c": len(accepted), "distinct_accepted": len(distinct)}
        )
    return rows


def metrics(rows: list[dict[str, Any]], n: int, ks: list[int], *, seed: int = 0) -> dict[str, Any]:
    """pass@k for each k (mean over problems), precision (pass@1), coverage (pass@n), and 95%
    bootstrap intervals over problems (10,000 resamples) for each."""
    ks = sorted(set(ks) | {1, n})
    columns = {str(k): [pass_at_k(r["n"], r["c"], k) for r in rows] for k in ks}
    means = {k: sum(v) / len(v) for k, v in columns.items()}
    intervals = bootstrap_mean_intervals(columns, seed=seed)
    ci = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in intervals.items()}
    return {
        "pass_at_k": {k: round(v, 6) for k, v in means.items()},
        "precision": round(means["1"], 6),
        "coverage": round(means[str(n)], 6),
        "ci": {"pass_at_k": ci, "precision": ci["1"], "coverage": ci[str(n)]},
    }


def write_results(
    run_dir: Path,
    *,
    suite: str,
    split: str | None,
    n: int,
    ks: list[int],
    problems: list[Problem],
    run: StoredRun,
    proof_of: Callable[[Problem, str], str],
    provenance: dict[str, Any],
    timings: dict[str, Any],
    machinery: dict[str, int] | None = None,
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`search`: a run of searches' settings (search_run.search_settings); results.json then
    also holds the expansions used per problem and overall."""
    rows = problem_rows(problems, n, run, proof_of)
    samples = [run.samples[(p.name, i)] for p in problems for i in range(n)]
    reused = sum(s.source in ("cache", "duplicate") for s in samples)
    results = {
        "suite": suite,
        "split": split,
        "n": n,
        **metrics(rows, n, ks),
        "problems": rows,
        "provenance": provenance,
        "timings": timings,
        "cache_hit_rate": round(reused / len(samples), 6) if samples else 0.0,
        "reasons": _reasons(samples),
        "store_bytes_per_sample": round(run.bytes / len(samples), 1) if samples else 0.0,
        # machinery retries and crash re-checks: how hard the verifier had to work to judge
        "machinery": machinery or {"retries": 0, "crash_rechecks": 0},
    }
    if search is not None:
        results["search"] = search_summary(search, problems, n, run, rows)
    # a full disk here: one line naming the file (StoreWriteError); the samples stay stored
    # and `--resume` writes these again without redoing any sample
    for path, write in (
        (run_dir / RESULTS, lambda p: write_json_atomic(p, results)),
        (run_dir / ACCEPTED, lambda p: _write_accepted(p, problems, n, run, proof_of)),
    ):
        try:
            write(path)
        except OSError as exc:
            raise write_failed(path, exc) from None
    return results


def search_summary(
    settings: dict[str, Any],
    problems: list[Problem],
    n: int,
    run: StoredRun,
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The search settings, the expansions used (mean and max over all searches) and how the
    searches ended; each problem's row gets its own `expansions` {mean, max}."""
    used: list[int] = []
    stopped: dict[str, int] = {}
    for problem, row in zip(problems, rows, strict=True):
        figures = [run.samples[(problem.name, i)].search or {} for i in range(n)]
        counts = [int(f.get("expansions", 0)) for f in figures]
        row["expansions"] = _spread(counts)
        used += counts
        for f in figures:
            why = str(f.get("stopped", "?"))
            stopped[why] = stopped.get(why, 0) + 1
    return {
        **settings,
        "expansions_used": {**_spread(used), "total": sum(used)},
        "stopped": dict(sorted(stopped.items(), key=lambda kv: -kv[1])),
    }


def _spread(counts: list[int]) -> dict[str, float | int]:
    return {
        "mean": round(sum(counts) / len(counts), 3) if counts else 0.0,
        "max": max(counts, default=0),
    }


def _reasons(samples: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.reason or "?"] = counts.get(s.reason or "?", 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _write_accepted(
    path: Path,
    problems: list[Problem],
    n: int,
    run: StoredRun,
    proof_of: Callable[[Problem, str], str],
) -> None:
    with atomic_file(path, errors="backslashreplace") as f:
        for problem in problems:
            for i in range(n):
                sample = run.samples[(problem.name, i)]
                if sample.accepted:
                    record = {
                        "name": problem.name,
                        "index": i,
                        "formal_statement": problem.formal_statement,
                        "proof": proof_of(problem, sample.completion),
                    }
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
