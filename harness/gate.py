"""The regression gate (`prover eval ... --baseline RUN/results.json --max-drop 0.02`), and
`load_results`, the one validating reader of a run's results.json (shared with `prover report`).

A metric fails the gate only when its observed drop exceeds `max_drop` AND a paired bootstrap
over problems puts the drop above zero with the given confidence: a small suite's noise alone
never fails a build, and a significant but negligible drop does not either.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.metrics import paired_bootstrap_drop, pass_at_k

RESULTS_FILE = "results.json"


class GateError(ValueError):
    """The gate refuses: runs that cannot be compared (suite, split, n or problems differ), or a
    run it cannot read (ResultsError). The message is one line."""


class ResultsError(GateError):
    """A results.json that is missing or does not follow the schema; the message is one line."""


# --- reading results.json ------------------------------------------------------------------


def load_results(path: Path | str) -> dict[str, Any]:
    """Read and validate RUN_DIR/results.json (or the file itself); ResultsError if invalid."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.exists():
        if path.is_dir():
            raise ResultsError(f"{path}: no {RESULTS_FILE} (is the run finished?)")
        raise ResultsError(f"{path}: no such run directory or {RESULTS_FILE}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{file}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read ({exc.strerror})") from None
    try:
        if isinstance(data, dict) and "stopped" in data:
            raise ResultsError(stopped_message(data, file.parent))
        validate_results(data)
    except ResultsError as exc:
        raise ResultsError(f"{file}: {exc}") from None
    return data


def stopped_message(data: dict[str, Any], run_dir: Path | None = None) -> str:
    """Why a run that stopped on a machinery failure (`"stopped": CAUSE`, no metrics) is no
    result: its checks were never judged, so it says nothing about the model."""
    cause = data["stopped"]
    if not isinstance(cause, str) or not cause.strip():
        raise ResultsError('"stopped" must be a non-empty string (the cause)')
    suite = data.get("suite") if isinstance(data.get("suite"), str) else "SUITE"
    out = f" --out {run_dir}" if run_dir is not None else ""
    return (
        f"the run stopped on a machinery failure ({' '.join(cause.split())}), so it has no "
        f"results: finish it with `prover eval {suite} ...{out} --resume`"
    )


def validate_results(data: object) -> None:
    """Check the results.json schema (the keys `report` and the gate read); ResultsError."""
    if not isinstance(data, dict):
        raise ResultsError("expected a JSON object at the top level")
    if "stopped" in data:  # a run stopped on a machinery failure: no metrics to read
        raise ResultsError(stopped_message(data))
    for key in ("suite", "split", "n", "pass_at_k", "precision", "coverage", "ci", "problems"):
        if key not in data:
            raise ResultsError(f'missing key "{key}"')
    if not isinstance(data["suite"], str) or not data["suite"]:
        raise ResultsError('"suite" must be a non-empty string')
    if data["split"] is not None and not isinstance(data["split"], str):
        raise ResultsError('"split" must be a string or null')
    n = _count(data["n"], '"n"', minimum=1)
    pass_at = _mapping(data["pass_at_k"], '"pass_at_k"')
    if not pass_at:
        raise ResultsError('"pass_at_k" is empty')
    for k, value in pass_at.items():
        if not k.isdigit() or not 1 <= int(k) <= n:
            raise ResultsError(f'"pass_at_k" key "{k}" must be an integer k from 1 to n={n}')
        _fraction(value, f'"pass_at_k"["{k}"]')
    _fraction(data["precision"], '"precision"')
    _fraction(data["coverage"], '"coverage"')
    ci = _mapping(data["ci"], '"ci"')
    for key in ("precision", "coverage"):
        if key not in ci:
            raise ResultsError(f'missing key "ci"."{key}"')
        _interval(ci[key], f'"ci"."{key}"')
    for k, pair in _mapping(ci.get("pass_at_k", {}), '"ci"."pass_at_k"').items():
        _interval(pair, f'"ci"."pass_at_k"["{k}"]')
    _validate_problems(data["problems"])
    if "machinery" in data:  # older runs have none
        machinery = _mapping(data["machinery"], '"machinery"')
        for key in ("retries", "crash_rechecks"):
            _count(machinery.get(key), f'"machinery"."{key}"', minimum=0)
    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict):
        raise ResultsError('"provenance" must be an object')
    for key in ("model", "label"):
        if provenance.get(key) is not None and not isinstance(provenance[key], str):
            raise ResultsError(f'"provenance"."{key}" must be a string')


def _validate_problems(problems: object) -> None:
    if not isinstance(problems, list) or not problems:
        raise ResultsError('"problems" must be a non-empty list')
    seen: set[str] = set()
    for i, problem in enumerate(problems):
        where = f'"problems"[{i}]'
        if not isinstance(problem, dict):
            raise ResultsError(f"{where} must be an object")
        name = problem.get("name")
        if not isinstance(name, str) or not name:
            raise ResultsError(f'{where}."name" must be a non-empty string')
        if name in seen:  # the gate pairs problems by name
            raise ResultsError(f'{where}: problem "{name}" appears twice')
        seen.add(name)
        n = _count(problem.get("n"), f'{where}."n"', minimum=1)
        c = _count(problem.get("c"), f'{where}."c"', minimum=0)
        if c > n:
            raise ResultsError(f'{where}: "c"={c} exceeds "n"={n}')


def _count(value: object, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ResultsError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _fraction(value: object, what: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise ResultsError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _interval(value: object, what: str) -> None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ResultsError(f"{what} must be a [low, high] pair, got {value!r}")
    low, high = (_fraction(v, what) for v in value)
    if low > high:
        raise ResultsError(f"{what}: low {low} is above high {high}")


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResultsError(f"{what} must be an object")
    return value


# --- the gate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricDrop:
    """One gated metric: means over the shared problems and the drop baseline - candidate."""

    metric: str
    baseline: float
    candidate: float
    drop: float
    lower_bound: float  # one-sided paired-bootstrap bound on the drop
    failed: bool


@dataclass(frozen=True)
class GateResult:
    suite: str
    n: int
    problems: int
    max_drop: float
    confidence: float
    metrics: tuple[MetricDrop, ...]
    lost: tuple[str, ...]  # accepted at least once by the baseline, never by the candidate
    gained: tuple[str, ...]  # the other way round

    @property
    def failed(self) -> bool:
        return any(m.failed for m in self.metrics)

    def lines(self) -> list[str]:
        conf = f"{self.confidence:.0%}"
        out = [
            f"regression gate: {self.suite}, {self.problems} problems, n={self.n}, "
            f"max drop {self.max_drop * 100:.1f} pp, {conf} confidence",
            f"  {'metric':<18}{'baseline':>9}{'candidate':>10}{'drop':>10}"
            f"{'lower bound':>13}  verdict",
        ]
        for m in self.metrics:
            out.append(
                f"  {m.metric:<18}{m.baseline:>9.1%}{m.candidate:>10.1%}{_pp(m.drop):>10}"
                f"{_pp(m.lower_bound):>13}  {'FAIL' if m.failed else 'ok'}"
            )
        out.append(f"  lost ({len(self.lost)}): {', '.join(self.lost) or '-'}")
        out.append(f"  gained ({len(self.gained)}): {', '.join(self.gained) or '-'}")
        for m in self.metrics:
            if m.failed:
                out.append(
                    f"FAILED: {m.metric} dropped {m.drop * 100:.1f} pp (more than "
                    f"{self.max_drop * 100:.1f} pp; {conf} lower bound "
                    f"{m.lower_bound * 100:.1f} pp > 0)"
                )
        if not self.failed:
            out.append("passed: no metric dropped significantly by more than the allowed drop")
        return out

    def render(self) -> str:
        return "\n".join(self.lines())


def _pp(fraction: float) -> str:
    """A difference of fractions in percentage points."""
    return f"{fraction * 100:+.1f} pp" if fraction else "0.0 pp"


def check_baseline(
    baseline: dict[str, Any],
    *,
    suite: str,
    n: int,
    split: str | None = None,
    problems: Collection[str] | None = None,
    search: dict[str, Any] | None = None,
) -> None:
    """Refuse (GateError) a baseline that a run of this suite, split, n, problem set and way of
    proving (`search`: a search run's settings, None for sampled whole proofs) cannot be
    compared with; `prover eval` can call it before sampling, so a bad baseline fails at once."""
    if baseline["suite"] != suite:
        raise GateError(
            f"cannot compare runs of different suites: {suite} against baseline {baseline['suite']}"
        )
    if split is not None and baseline["split"] not in (None, split):  # None: all splits
        raise GateError(
            f"cannot compare runs of different splits: {split} against baseline {baseline['split']}"
        )
    if baseline["n"] != n:
        raise GateError(
            f"cannot compare runs with different samples per problem: n={n} against baseline "
            f"n={baseline['n']}"
        )
    _same_way_of_proving(search, baseline.get("search"))
    if problems is not None:
        theirs = {p["name"] for p in baseline["problems"]}
        ours = set(problems)
        if ours != theirs:
            raise GateError(
                f"problem sets differ: {_some(ours - theirs)} only in this run, "
                f"{_some(theirs - ours)} only in the baseline"
            )


# A search section's outcomes; every other key of it is a setting that defines the samples.
SEARCH_OUTCOME_KEYS = ("expansions_used", "stopped")


def _same_way_of_proving(ours: object, theirs: object) -> None:
    """A search run is gated only against a search run with the same settings: a sample that is
    a whole search and one sampled whole proof are different measurements."""
    ours = ours if isinstance(ours, dict) else None
    theirs = theirs if isinstance(theirs, dict) else None
    if ours is None and theirs is None:
        return
    if ours is None or theirs is None:
        kind = "a search run against a whole-proof baseline" if ours else (
            "a whole-proof run against a search baseline"
        )
        raise GateError(f"cannot compare {kind}")
    differ = [
        f"{key}={ours.get(key)} against baseline {key}={theirs.get(key)}"
        for key in sorted((set(ours) | set(theirs)) - set(SEARCH_OUTCOME_KEYS))
        if ours.get(key) != theirs.get(key)
    ]
    if differ:
        raise GateError(f"cannot compare searches with different settings: {'; '.join(differ)}")


def _some(names: set[str], shown: int = 3) -> str:
    ordered = sorted(names)
    head = ", ".join(ordered[:shown]) + (", ..." if len(ordered) > shown else "")
    return f"{len(ordered)} ({head})" if ordered else "0"


def compare_runs(
    candidate: dict[str, Any],
    baseline: dict[str, Any],
    max_drop: float,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> GateResult:
    """Gate `candidate` against `baseline` (both as `load_results` returns them) on pass@1 and
    coverage (pass@n), per problem, paired by problem name. GateError if not comparable."""
    if not 0.0 <= max_drop <= 1.0:  # NaN fails this too
        raise GateError(f"--max-drop must be a fraction from 0 to 1 (0.02 = 2 pp), got {max_drop}")
    cand = {p["name"]: p for p in candidate["problems"]}
    suite, n, split = candidate["suite"], candidate["n"], candidate["split"]
    check_baseline(
        baseline, suite=suite, n=n, split=split, problems=cand, search=candidate.get("search")
    )
    base = {p["name"]: p for p in baseline["problems"]}
    names = sorted(cand)
    metrics = []
    for metric, score in (("pass@1", _pass_at_1), (f"coverage (pass@{n})", _covered)):
        before = [score(base[name]) for name in names]
        after = [score(cand[name]) for name in names]
        drop, lower = paired_bootstrap_drop(
            before, after, resamples=resamples, confidence=confidence, seed=seed
        )
        metrics.append(
            MetricDrop(
                metric=metric,
                baseline=_mean(before),
                candidate=_mean(after),
                drop=drop,
                lower_bound=lower,
                # the tolerance keeps a drop of exactly max_drop (as floats sum it) passing
                failed=drop > max_drop + 1e-12 and lower > 0.0,
            )
        )
    return GateResult(
        suite=suite,
        n=n,
        problems=len(names),
        max_drop=max_drop,
        confidence=confidence,
        metrics=tuple(metrics),
        lost=tuple(x for x in names if base[x]["c"] > 0 and cand[x]["c"] == 0),
        gained=tuple(x for x in names if cand[x]["c"] > 0 and base[x]["c"] == 0),
    )


def _pass_at_1(problem: dict[str, Any]) -> float:
    return pass_at_k(problem["n"], problem["c"], 1)


def _covered(problem: dict[str, Any]) -> float:
    """pass@n with the problem's own n: 1.0 if any sample was accepted."""
    return pass_at_k(problem["n"], problem["c"], problem["n"])


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
