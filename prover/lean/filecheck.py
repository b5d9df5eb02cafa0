"""FILE mode of `prover check`: judge every theorem of one Lean file, in one REPL command.

The file's leading import/set_option/open lines are the header (elaborated once per process);
the rest is one command, sent after as many blank lines as the header has, so Lean's message
positions are the file's own lines. Messages are attributed to declarations by line; each named
theorem then gets `#print axioms`. An `example` has no name, so it is judged on rungs 1-4 only.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any

from prover.lean.acceptance import axioms_reason, has_sorry, parse_axioms
from prover.lean.banned import scan
from prover.lean.commands import lean_name
from prover.lean.pool import ReplPool
from prover.lean.protocol import (
    CommandResponse,
    Message,
    Pos,
    ProtocolError,
    Sorry,
    parse_response,
)
from prover.lean.remote import RemoteVerifier
from prover.lean.repl import HeaderFailure, ReplFailure
from prover.lean.replay import ReplayFailed, ReplayPlan, pickle_env
from prover.lean.source import Declaration, declarations, split_header
from prover.lean.verdict import Verdict

JUDGED = ("theorem", "lemma", "example")
EXAMPLE_NOTE = "example: judged on rungs 1-4 only (`#print axioms` cannot name an example)"


class NoTheorem(ValueError):
    """The file declares no theorem, lemma or example."""


@dataclass
class FileReport:
    file: str
    accepted: bool
    lean_version: str | None
    theorems: list[Verdict] = field(default_factory=list)
    file_messages: list[dict[str, Any]] = field(default_factory=list)  # outside any theorem

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "accepted": self.accepted,
            "lean_version": self.lean_version,
            "theorems": [v.to_json() for v in self.theorems],
            "file_messages": self.file_messages,
        }


def display_name(decl: Declaration, offset: int) -> str:
    return decl.name if decl.name else f"example (line {decl.start_line + offset})"


# Sent first after the header when the file goes to a remote verifier: its answer's line tells
# how many lines the server split off as the header (Kimina and `prover serve` differ).
MARKER = '#check ("prover: the file starts here" : String)'


def check_file(pool: ReplPool | RemoteVerifier, path: str, text: str) -> FileReport:
    start = time.monotonic()
    # A UTF-8 byte order mark is no part of the Lean text (editors write one): it goes, so the
    # header is found and sent as Lean's own file reader would see it.
    text = text.removeprefix("\ufeff")
    header, rest, _ = split_header(text)
    offset = header.count("\n")  # lines before `rest` starts
    decls = [d for d in declarations(rest) if d.keyword in JUDGED]
    if not decls:
        raise NoTheorem(f"{path}: no theorem, lemma or example to check")
    # `prover selftest --lean-only` turns the text scan off: the file goes to Lean as it is
    text_scan = pool.config.text_scan if isinstance(pool, ReplPool) else pool.text_scan
    banned_outside, banned_in = _banned(text, len(header), decls) if text_scan else (None, {})
    verdicts: dict[int, Verdict] = {}
    for i, decl in enumerate(decls):
        reason = banned_outside or banned_in.get(i)
        if reason:
            verdicts[i] = Verdict(display_name(decl, offset), False, "banned", detail=reason)
    response: CommandResponse | None = None
    axioms: dict[str, list[str]] = {}
    failure: tuple[str, str] | None = None
    named = [d for i, d in enumerate(decls) if d.name and i not in verdicts]
    # _root_ and «escapes»: the exact constant, whatever namespace is open
    query = "\n".join(f"#print axioms _root_.{lean_name(d.name or '')}" for d in named)
    replayed: dict[str, list[str]] | ReplayFailed | None = None
    if len(verdicts) < len(decls):
        if isinstance(pool, ReplPool):
            names = tuple(d.name or "" for d in named)
            response, axioms, failure, replayed = _run_local(
                pool, header, offset, rest, query, names
            )
        else:
            response, axioms, failure = _run_remote(pool, header, offset, rest, query)
    allow_native = pool.config.allow_native if isinstance(pool, ReplPool) else pool.allow_native
    report = FileReport(path, False, pool.lean_version)
    for i, decl in enumerate(decls):
        if i in verdicts:
            verdict = verdicts[i]
        elif failure is not None:
            verdict = Verdict(display_name(decl, offset), False, failure[0], detail=failure[1])  # type: ignore[arg-type]
        else:
            assert response is not None
            verdict = _judge(
                display_name(decl, offset), decl, _within(response, decl, offset), axioms,
                allow_native,
            )  # fmt: skip
        if verdict.accepted and decl.keyword != "example" and replayed is not None:
            verdict = _after_replay(verdict, decl.name or "", replayed, allow_native)
        if decl.keyword == "example":
            verdict.detail = "; ".join(filter(None, [verdict.detail, EXAMPLE_NOTE]))
        report.theorems.append(verdict)
    if response is not None:
        report.file_messages = [
            m.to_json() for m in response.messages if not any(_in_decl(m, d, offset) for d in decls)
        ]
    file_errors = any(m["severity"] == "error" for m in report.file_messages)
    report.accepted = all(v.accepted for v in report.theorems) and not file_errors
    elapsed = round(time.monotonic() - start, 4)
    for verdict in report.theorems:
        verdict.time_s = elapsed
    return report


Run = tuple[CommandResponse | None, dict[str, list[str]], tuple[str, str] | None]
Replayed = dict[str, list[str]] | ReplayFailed | None


def _after_replay(
    verdict: Verdict, name: str, replayed: dict[str, list[str]] | ReplayFailed, allow_native: bool
) -> Verdict:
    """An accepted theorem judged again on the replay's answer (replay.py)."""
    messages = verdict.messages
    if isinstance(replayed, ReplayFailed):
        reason, detail = replayed.reason, replayed.detail
        return Verdict(verdict.name, False, reason, messages=messages, detail=detail)  # type: ignore[arg-type]
    found = replayed.get(name)
    if found is None:
        detail = f"`#print axioms {name}` gave no answer after replay"
        return Verdict(verdict.name, False, "replay", messages=messages, detail=detail)
    if axioms_reason(found, allow_native=allow_native) != "ok":
        detail = f"after replay the proof rests on axioms [{', '.join(sorted(found))}]"
        axioms = sorted(found)
        return Verdict(verdict.name, False, "replay", axioms, messages, detail=detail)
    verdict.axioms = sorted(found)
    verdict.replayed = True
    return verdict


def _run_local(
    pool: ReplPool, header: str, offset: int, rest: str, query: str, names: tuple[str, ...]
) -> tuple[CommandResponse | None, dict[str, list[str]], tuple[str, str] | None, Replayed]:
    """The file as one command (padded so positions are the file's lines), then the axioms;
    then, with replay on, the file's environment replayed and its theorems' axioms again."""
    pickled: bytes | None = None
    deadline = float("inf")
    try:
        with pool.repl_for(header) as repl:
            deadline = time.monotonic() + pool.config.timeout
            response = repl.command(
                "\n" * offset + rest, env=repl.header_env, timeout=pool.config.timeout
            )
            repl.checks_done += 1
            printed = None
            if query:
                printed = repl.command(
                    query, env=response.env, timeout=max(0.001, deadline - time.monotonic())
                )
            if names and pool.replays_on(repl) and response.env is not None:
                pool.require_replay_support()
                try:
                    left = max(0.001, deadline - time.monotonic())
                    pickled = pickle_env(repl, response.env, left)
                except ReplayFailed as exc:
                    axioms = parse_axioms(printed.messages) if printed else {}
                    return response, axioms, None, exc
    except HeaderFailure as exc:
        return None, {}, ("error", str(exc)), None
    except ReplFailure as exc:
        return None, {}, (exc.reason, exc.detail), None
    axioms = parse_axioms(printed.messages) if printed else {}
    replayed: Replayed = None
    if pickled is not None:
        try:
            replayed = pool.replay(pickled, ReplayPlan(header, names), deadline)
        except ReplayFailed as exc:
            replayed = exc
    return response, axioms, None, replayed


def _run_remote(verifier: RemoteVerifier, header: str, offset: int, rest: str, query: str) -> Run:
    """The file as one snippet on a Kimina-compatible server; positions mapped back to the
    file's lines through the marker's."""
    code = header + MARKER + "\n" + rest.rstrip("\n") + ("\n\n" + query if query else "")
    result = verifier.run_snippet(code)
    if result.get("error"):
        reason = "timeout" if "timed out" in str(result["error"]).lower() else "crash"
        return None, {}, (reason, f"verifier: {result['error']}")
    raw = result.get("response")
    if not isinstance(raw, dict):
        return None, {}, ("crash", "verifier returned no REPL answer")
    try:
        parsed = parse_response({k: v for k, v in raw.items() if k != "time"} or {"env": None})
    except ProtocolError as exc:
        return None, {}, ("crash", f"verifier returned garbage: {exc}")
    if not isinstance(parsed, CommandResponse):
        return None, {}, ("crash", "verifier returned no command answer")
    marker = next(
        (m for m in parsed.messages if "prover: the file starts here" in m.data and m.pos), None
    )
    if marker is None or marker.pos is None:
        return None, {}, ("crash", "verifier answer lacks the position marker")
    shift = offset - marker.pos.line
    axioms = parse_axioms(parsed.messages)
    kept = tuple(
        _shifted(m, shift) for m in parsed.messages
        if m is not marker and not _is_axioms_answer(m)
    )  # fmt: skip
    sorries = tuple(
        Sorry(s.goal, s.proof_state, _pos(s.pos, shift), _pos(s.end_pos, shift))
        for s in parsed.sorries
    )
    return CommandResponse(None, kept, sorries), axioms, None


def _is_axioms_answer(message: Message) -> bool:
    return message.severity == "info" and (
        "depends on axioms" in message.data or "does not depend on any axioms" in message.data
    )


def _pos(pos: Pos | None, shift: int) -> Pos | None:
    return None if pos is None else Pos(pos.line + shift, pos.column)


def _shifted(message: Message, shift: int) -> Message:
    return Message(
        message.severity, message.data, _pos(message.pos, shift), _pos(message.end_pos, shift)
    )


def _judge(
    name: str,
    decl: Declaration,
    response: CommandResponse,
    axioms: dict[str, list[str]],
    allow_native: bool,
) -> Verdict:
    messages = [m.to_json() for m in response.messages]
    if response.errors:
        return Verdict(name, False, "error", messages=messages)
    if has_sorry(response):
        return Verdict(name, False, "sorry", messages=messages)
    if decl.keyword == "example":
        return Verdict(name, True, "ok", messages=messages)
    found = axioms.get(decl.name or "")
    if found is None:
        return Verdict(
            name,
            False,
            "error",
            messages=messages,
            detail=f"`#print axioms {decl.name}` gave no answer",
        )
    reason = axioms_reason(found, allow_native=allow_native)
    return Verdict(name, reason == "ok", reason, axioms=sorted(found), messages=messages)  # type: ignore[arg-type]


def _in_decl(message: Message, decl: Declaration, offset: int) -> bool:
    if message.pos is None:
        return False
    return decl.start_line + offset <= message.pos.line <= decl.end_line + offset


def _within(response: CommandResponse, decl: Declaration, offset: int) -> CommandResponse:
    """The part of the file's answer that belongs to `decl` (by line)."""
    messages = tuple(m for m in response.messages if _in_decl(m, decl, offset))
    sorries = tuple(
        s
        for s in response.sorries
        if s.pos is not None and decl.start_line + offset <= s.pos.line <= decl.end_line + offset
    )
    return CommandResponse(response.env, messages, sorries)


def _banned(
    text: str, rest_at: int, decls: list[Declaration]
) -> tuple[str | None, dict[int, str]]:
    """The scan of the whole file (its header too), one pass: the first banned construct
    outside every judged declaration (it bans them all), and the first inside each one
    (by index). `rest_at`: where the text after the header starts (declaration offsets)."""
    outside: tuple[int, str] | None = None
    inside: dict[int, tuple[int, str]] = {}
    spans = [(d.start + rest_at, d.end + rest_at) for d in decls]
    starts = [start for start, _ in spans]
    for hit in scan(text, file_mode=True):
        k = bisect.bisect_right(starts, hit.offset) - 1
        if k >= 0 and hit.offset < spans[k][1]:
            if k not in inside or hit.offset < inside[k][0]:
                inside[k] = (hit.offset, hit.description)
        elif outside is None or hit.offset < outside[0]:
            outside = (hit.offset, hit.description)
    return (outside[1] if outside else None), {k: d for k, (_, d) in inside.items()}
