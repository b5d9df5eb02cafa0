"""`prover selftest`: run the canaries against the configured Lean and compare verdicts.

Tactic mode is checked on the same Lean (selftest_tactics.py): its outcome rule, a found path
judged end to end, and whether the per-tactic heartbeat bound takes effect (reported only).

Exit 0: every canary and tactic-mode check got its expected answer; 1: some did not (the
tables say which); 2: the machinery itself failed (no REPL, a header that does not elaborate,
an unreachable server), which is no verdict about any canary.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

from rich.console import Console
from rich.table import Table

from prover.errors import MachineryFailure  # the canaries could not run at all
from prover.lean import canaries as canary_set
from prover.lean.canaries import Canary
from prover.lean.filecheck import check_file
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.remote import RemoteVerifier, VerifierUnavailable
from prover.lean.repl import HeaderFailure, ReplFailure
from prover.lean.sandbox import ReplNotFound, SandboxUnavailable
from prover.lean.verdict import Verdict
from prover.lean.verifiers import open_verifier
from prover.selftest_tactics import TacticReport, not_applicable, run_tactic_checks

NO_REPLAY = (
    "this verifier cannot replay everywhere (verdicts say replayed: false, as a Kimina-compatible "
    "server's do): those kernel-replay canaries cannot be shown rejected by Lean-side rungs here"
)
CANNOT_REPLAY = "not applicable here: this check path cannot replay (verdict: replayed false)"


@dataclass
class Row:
    id: str
    cls: str
    expected: str
    got: str  # the verdict's reason; "" when not run
    result: str  # "ok" | "MISMATCH" | "n/a"
    note: str = ""  # a mismatch's detail, or why a canary does not apply


@dataclass
class Outcome:
    rows: list[Row]
    lean_version: str | None
    canary_version: str
    lean_only: bool
    verifier: str
    replay: bool
    tactic: TacticReport

    @property
    def mismatches(self) -> list[Row]:
        return [r for r in self.rows if r.result == "MISMATCH"]

    @property
    def ok(self) -> bool:
        """Every canary and every tactic-mode check got its expected answer."""
        return not self.mismatches and not self.tactic.mismatches

    def summary(self) -> str:
        counts = {k: sum(r.result == k for r in self.rows) for k in ("ok", "MISMATCH", "n/a")}
        mode = "text scan off (--lean-only)" if self.lean_only else "text scan on"
        line = (
            f"selftest: {len(self.rows)} canaries, {counts['ok']} ok, "
            f"{counts['MISMATCH']} mismatched, {counts['n/a']} not applicable "
            f"(Lean {self.lean_version or 'version unknown'}, canaries for v{self.canary_version},"
            f" {self.verifier}, {mode}, kernel replay {'on' if self.replay else 'off'})"
        )
        if self.lean_only and any(r.note == CANNOT_REPLAY for r in self.rows):
            line += f"\nselftest: {NO_REPLAY}"
        return "\n".join([line, *self.tactic.lines()])

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "lean_version": self.lean_version,
            "canary_version": self.canary_version,
            "lean_only": self.lean_only,
            "verifier": self.verifier,
            "replay": self.replay,
            "rows": [asdict(r) for r in self.rows],
            "tactic": self.tactic.to_json(),
            "summary": self.summary(),
        }


def run_selftest(config: VerifierConfig, *, lean_only: bool, lean_version: str | None) -> Outcome:
    """Open the configured verifier, pick the canaries for its Lean, check them all."""
    config = replace(config, text_scan=not lean_only)
    try:
        with open_verifier(config) as checker:
            return _run(checker, config, lean_only=lean_only, asked_version=lean_version)
    except (ReplNotFound, SandboxUnavailable, VerifierUnavailable) as exc:
        raise MachineryFailure(str(exc)) from None
    except (HeaderFailure, ReplFailure) as exc:  # raised outside a check (its version query)
        raise MachineryFailure(f"the REPL failed: {exc}") from None


def _run(
    checker: ReplPool | RemoteVerifier,
    config: VerifierConfig,
    *,
    lean_only: bool,
    asked_version: str | None,
) -> Outcome:
    running = _running_version(checker)
    version = canary_set.normalize_version(asked_version or running or canary_set.DEFAULT_VERSION)
    if version not in canary_set.SUPPORTED_VERSIONS:
        raise MachineryFailure(
            f"no canaries for Lean {version}; supported: "
            f"{', '.join(canary_set.SUPPORTED_VERSIONS)} (pass --lean-version)"
        )
    if asked_version and running and canary_set.normalize_version(running) != version:
        print(
            f"selftest: note: the verifier runs Lean {running}; checking the canaries for "
            f"v{version} as asked",
            file=sys.stderr,
        )
    probe = checker.check(canary_set.probe_item(version))
    if not probe.accepted:
        raise MachineryFailure(
            f"an honest probe proof was not accepted ({probe.reason}: "
            f"{_first_line(probe) or 'no detail'})"
        )
    replay = bool(getattr(probe, "replayed", False))
    todo = canary_set.canaries(version)
    verdicts = dict(_check_all(checker, todo, lean_only=lean_only, replay=replay))
    rows = [_row(c, verdicts.get(c.id), lean_only=lean_only, replay=replay) for c in todo]
    remote = isinstance(checker, RemoteVerifier)
    tactic = (
        not_applicable()
        if isinstance(checker, RemoteVerifier)
        else run_tactic_checks(checker, version, replay=replay)
    )
    return Outcome(
        rows,
        checker.lean_version or running,
        version,
        lean_only,
        f"verifier {config.verifier_url}" if remote else "local REPL pool",
        replay,
        tactic,
    )


def _running_version(checker: ReplPool | RemoteVerifier) -> str | None:
    """The Lean the verifier runs: a local pool asks a header-less REPL (no Mathlib import)."""
    if isinstance(checker, ReplPool):
        with checker.repl_for(""):
            pass
    return checker.lean_version


def _applies(canary: Canary, *, lean_only: bool, replay: bool) -> str:
    """Why `canary` is skipped in this run ("" when it runs)."""
    if not lean_only:
        return ""
    if canary.lean_only is None:
        return f"not applicable in --lean-only: {canary.not_lean_only}"
    if canary.lean_only == "replay" and not replay:
        return CANNOT_REPLAY
    return ""


def _check_all(
    checker: ReplPool | RemoteVerifier, todo: list[Canary], *, lean_only: bool, replay: bool
) -> Iterator[tuple[str, Verdict]]:
    runs = [c for c in todo if not _applies(c, lean_only=lean_only, replay=replay)]
    by_item = {id(c.item): c.id for c in runs if c.item is not None}
    items = [c.item for c in runs if c.item is not None]
    for item, verdict in checker.check_many(items):
        yield by_item[id(item)], verdict
    for canary in runs:
        if canary.file is not None:
            report = check_file(checker, f"{canary.id}.lean", canary.file)
            verdict = next(v for v in report.theorems if v.name == canary.theorem)
            yield canary.id, verdict


def _row(canary: Canary, verdict: Verdict | None, *, lean_only: bool, replay: bool) -> Row:
    expected = canary.lean_only if lean_only else canary.expected
    skip = _applies(canary, lean_only=lean_only, replay=replay)
    if skip or verdict is None or expected is None:
        return Row(canary.id, canary.cls, expected or "-", "", "n/a", skip)
    if expected == "replay" and verdict.accepted and not getattr(verdict, "replayed", False):
        # this check path (FILE mode, a remote server) has no replay rung to show
        return Row(canary.id, canary.cls, expected, verdict.reason, "n/a", CANNOT_REPLAY)
    good = verdict.reason == expected and verdict.accepted == (expected == "ok")
    note = "" if good else (_first_line(verdict) or canary.why)
    return Row(canary.id, canary.cls, expected, verdict.reason, "ok" if good else "MISMATCH", note)


def _first_line(verdict: Verdict) -> str:
    errors = [m.get("data", "") for m in verdict.messages if m.get("severity") == "error"]
    text = verdict.detail or (errors[0] if errors else "")
    return text.splitlines()[0][:160] if text else ""


def render(outcome: Outcome, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False))
        return
    console = Console() if sys.stdout.isatty() else Console(width=200)
    table = Table(title=f"prover selftest (canaries for Lean v{outcome.canary_version})")
    for column in ("canary", "class", "expected", "got", "result", "note"):
        table.add_column(column, no_wrap=column in ("canary", "result"))
    for row in outcome.rows:
        style = {"MISMATCH": "bold red", "n/a": "dim"}.get(row.result, "")
        table.add_row(row.id, row.cls, row.expected, row.got or "-", row.result, row.note,
                      style=style)  # fmt: skip
    console.print(table)
    if not outcome.tactic.skipped:
        tactics = Table(title="tactic mode")
        for column in ("check", "expected", "got", "result", "note"):
            tactics.add_column(column, no_wrap=column in ("check", "result"))
        for tactic_row in outcome.tactic.rows:
            style = "bold red" if tactic_row.result == "MISMATCH" else ""
            tactics.add_row(tactic_row.id, tactic_row.expected, tactic_row.got or "-",
                            tactic_row.result, tactic_row.note, style=style)  # fmt: skip
        console.print(tactics)
    print(outcome.summary())
