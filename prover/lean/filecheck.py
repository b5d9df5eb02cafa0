"""FILE mode of `prover check`: judge every theorem of one Lean file, in one REPL command.

The file's leading import/set_option/open lines are the header (elaborated once per process);
the rest is one command, sent after as many blank lines as the header has, so Lean's message
positions are the file's own lines. Messages are attributed to declarations by line; each
theorem then gets `#print axioms`, and with the replay rung on, the kernel replay.

An `example` is not added to the environment, so neither `#print axioms` nor the replay could
see it: in the text sent (never in the user's file) its keyword becomes `noncomputable def
prover_example_L<line>_<random>`, and it is judged like a named theorem, under its display name
`example (line N)`. A `def`, not a `theorem`: Lean elaborates an example as a definition
(`src/Lean/Elab/DefView.lean`, `mkDefViewOfExample`: `DefKind.example`, optional type, any
type, not only a proposition); `noncomputable` because an example is never compiled. Columns
after the keyword on its line are mapped back in Lean's messages (a message that names the
declaration shows the generated name). A declaration that does not start its line
(`example : P := p example : Q := q`) is judged too, as Lean reads it: a command of its own.

A banned construct rejects every theorem of the file, not only the declaration it stands in:
Lean starts a new command wherever the previous one ends (`src/Lean/Parser/Module.lean`,
`parseCommand`), so an indented `set_option debug.skipKernelTC true` or `run_cmd` is a command
of its own that acts on the rest of the file, and meta code can change what Lean later reports
about any theorem (messages, `#print axioms`). Search tactics (`exact?`, ...) are the exception:
they act inside their own proof only.
"""

from __future__ import annotations

import bisect
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from prover.lean.acceptance import axioms_reason, has_sorry, parse_axioms
from prover.lean.banned import _SEARCH_TACTICS as SEARCH_TACTICS  # tactics, proof-local
from prover.lean.banned import scan
from prover.lean.commands import lean_name
from prover.lean.file_by_declaration import (
    SPLIT_ON,
    FileRun,
    Replayed,
    run_by_declaration,
    uses_unfinished,
)
from prover.lean.lexer import line_col, tokenize
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
EXAMPLE_PREFIX = "prover_example_L"
# modifiers after which `noncomputable` cannot be written (Lean's `declModifiers` order), or
# that already say it
_NO_NONCOMPUTABLE = frozenset({"noncomputable", "unsafe", "partial", "nonrec"})


class NoTheorem(ValueError):
    """The file declares no theorem, lemma or example."""


@dataclass
class FileReport:
    file: str
    accepted: bool
    lean_version: str | None
    theorems: list[Verdict] = field(default_factory=list)
    file_messages: list[dict[str, Any]] = field(default_factory=list)  # outside any theorem
    # Why the file was judged declaration by declaration (the whole file's `reason: detail`
    # when sent as one command); None: judged as one command.
    per_declaration: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "accepted": self.accepted,
            "lean_version": self.lean_version,
            "theorems": [v.to_json() for v in self.theorems],
            "file_messages": self.file_messages,
            "per_declaration": self.per_declaration,
        }


def display_name(decl: Declaration, offset: int) -> str:
    return decl.name if decl.name else f"example (line {decl.start_line + offset})"


def display_names(rest: str, decls: list[Declaration], offset: int) -> list[str]:
    """What the report calls each declaration: its name, or `example (line N)`, with the
    column too where two examples share a line."""
    shown = [display_name(d, offset) for d in decls]
    twice = {name for name in shown if shown.count(name) > 1}
    column_of = line_col(rest)
    for i, decl in enumerate(decls):
        if shown[i] in twice and not decl.name:
            column = column_of(decl.command.keyword_offset)[1] + 1
            shown[i] = f"example (line {decl.start_line + offset}, column {column})"
    return shown


def judged_declarations(rest: str) -> list[Declaration]:
    """The theorems, lemmas and examples of `rest`, in order, those that do not start a line
    included: Lean starts a command wherever the previous one ends (`src/Lean/Parser/
    Module.lean`, `parseCommand`), so `example : P := p example : Q := q` is two examples.
    `theorem` and `example` are keywords of every Lean, never identifiers: such a token in
    code starts a command or is a parse error. (`lemma` is Mathlib's: a variable named `lemma`
    in a file without Mathlib would be misread, and the theorem holding it rejected.)"""
    found = declarations(rest)
    at_line_start = {d.command.keyword_offset for d in found}
    inside = [
        t.start
        for t in tokenize(rest)
        if t.kind == "ident" and t.text in JUDGED and t.start not in at_line_start
    ]
    if not inside:
        return [d for d in found if d.keyword in JUDGED]
    # Read again with a line break before each: the same commands, each at a line start, so
    # `declarations` gives its name (namespaces applied); offsets are then mapped back.
    split = "".join(
        rest[a:b] + ("\n" if b < len(rest) else "")
        for a, b in zip([0, *inside], [*inside, len(rest)], strict=True)
    )
    original = {o + bisect.bisect_right(inside, o): o for o in [*at_line_start, *inside]}
    starting = {d.command.keyword_offset: d for d in found}
    line_of = line_col(rest)
    out = []
    for decl in declarations(split):
        at = original.get(decl.command.keyword_offset)
        if decl.keyword not in JUDGED or at is None:
            continue
        if at in starting:
            out.append(starting[at])
            continue
        # Inside the lines of the declaration before it: its span runs from its keyword to
        # the end of that one's (messages on the lines they share go to both).
        end = next((d.end for d in reversed(found) if d.start <= at), len(rest))
        command = replace(decl.command, start=at, end=end, keyword_offset=at)
        last = max(at, len(rest[:end].rstrip()) - 1)
        start_line, end_line = line_of(at)[0], line_of(last)[0]
        out.append(replace(decl, start=at, end=end, start_line=start_line, end_line=end_line,
                           command=command))  # fmt: skip
    return out


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
    decls = judged_declarations(rest)
    if not decls:
        raise NoTheorem(f"{path}: no theorem, lemma or example to check")
    shown = display_names(rest, decls, offset)
    sent = _name_examples(rest, decls, offset)
    # `prover selftest --lean-only` turns the text scan off: the file goes to Lean as it is
    text_scan = pool.config.text_scan if isinstance(pool, ReplPool) else pool.text_scan
    banned = _banned(text, len(header), decls) if text_scan else {}
    verdicts = {i: Verdict(shown[i], False, "banned", detail=why) for i, why in banned.items()}
    names = tuple(sent.names[i] for i in range(len(decls)) if i not in verdicts)
    run = FileRun(None)
    if len(verdicts) < len(decls):
        if isinstance(pool, ReplPool):
            lines = [decls[i].start_line + offset for i in range(len(decls)) if i not in verdicts]
            run = _run_local(pool, header, offset, sent.rest, list(zip(names, lines, strict=True)))
        else:
            query = "\n".join(f"#print axioms _root_.{lean_name(name)}" for name in names)
            response, axioms, failure = _run_remote(pool, header, offset, sent.rest, query)
            run = FileRun(response, axioms, failure)
    response = sent.columns.restore(run.response) if run.response is not None else None
    allow_native = pool.config.allow_native if isinstance(pool, ReplPool) else pool.allow_native
    report = FileReport(path, False, pool.lean_version, per_declaration=run.split_because)
    unfinished = _unfinished_names(rest, offset, run)
    for i, decl in enumerate(decls):
        name = sent.names[i]
        stopped = run.unfinished_at(decl.start_line + offset)
        if i in verdicts:
            verdict = verdicts[i]
        elif stopped is not None:
            verdict = Verdict(shown[i], False, stopped.reason, detail=stopped.detail)  # type: ignore[arg-type]
        elif run.failure is not None:
            verdict = Verdict(shown[i], False, run.failure[0], detail=run.failure[1])  # type: ignore[arg-type]
        else:
            assert response is not None
            within = _within(response, decl, offset)
            verdict = _judge(shown[i], name, within, run.axioms, allow_native)
            if verdict.reason == "error" and not verdict.detail:
                verdict.detail = _dependency_note(rest[decl.start : decl.end], unfinished)
        if verdict.accepted and run.replayed is not None:
            verdict = _after_replay(verdict, name, run.replayed, allow_native)
        report.theorems.append(verdict)
    if response is not None:
        report.file_messages = [
            m.to_json() for m in response.messages if not any(_in_decl(m, d, offset) for d in decls)
        ]
    report.file_messages += _unjudged_commands(run, [d.start_line + offset for d in decls])
    file_errors = any(m["severity"] == "error" for m in report.file_messages)
    report.accepted = all(v.accepted for v in report.theorems) and not file_errors
    elapsed = round(time.monotonic() - start, 4)
    for verdict in report.theorems:
        verdict.time_s = elapsed
    return report


@dataclass(frozen=True)
class _Renamed:
    """One `example` keyword replaced in the text sent: where, in both texts."""

    line: int  # the file's line
    column: int  # the keyword's column (the same in both texts)
    sent_length: int  # length of what replaced it
    delta: int  # sent_length - len("example")


@dataclass(frozen=True)
class _Columns:
    """Maps columns of the text sent back to the file's, on the lines holding an example."""

    by_line: dict[int, list[_Renamed]]

    def column(self, pos: Pos | None) -> Pos | None:
        edits = self.by_line.get(pos.line) if pos is not None else None
        if pos is None or not edits:
            return pos
        shift = 0
        for edit in edits:  # in column order
            sent_at = edit.column + shift
            if pos.column >= sent_at + edit.sent_length:
                shift += edit.delta
            elif pos.column >= sent_at:
                return Pos(pos.line, edit.column)  # inside the generated name: the keyword
            else:
                break
        return Pos(pos.line, pos.column - shift)

    def restore(self, response: CommandResponse) -> CommandResponse:
        if not self.by_line:
            return response
        messages = tuple(
            Message(m.severity, m.data, self.column(m.pos), self.column(m.end_pos))
            for m in response.messages
        )
        sorries = tuple(
            Sorry(s.goal, s.proof_state, self.column(s.pos), self.column(s.end_pos))
            for s in response.sorries
        )
        return CommandResponse(response.env, messages, sorries)


@dataclass(frozen=True)
class _Sent:
    rest: str  # the text after the header as sent to Lean
    names: list[str]  # per judged declaration: the full name Lean gives it
    columns: _Columns


def _name_examples(rest: str, decls: list[Declaration], offset: int) -> _Sent:
    """`rest` with each `example` keyword token replaced by `noncomputable def NAME` (a fresh
    unguessable name, so `#print axioms` and the replay can name it; see the module doc)."""
    at = line_col(rest)
    code = [t for t in tokenize(rest) if t.kind not in ("comment", "doc_comment")]
    code_starts = [t.start for t in code]
    pieces: list[str] = []
    local_names: dict[int, str] = {}
    by_line: dict[int, list[_Renamed]] = {}
    prev = 0
    for i, decl in enumerate(decls):
        if decl.keyword != "example":
            continue
        keyword_at = decl.command.keyword_offset
        assert rest.startswith("example", keyword_at), "declarations() gives the keyword token"
        line, column = at(keyword_at)
        local = f"{EXAMPLE_PREFIX}{line + offset}_{secrets.token_hex(4)}"
        # `declModifiers`: `noncomputable` comes last but for `unsafe`/`partial`/`nonrec`
        k = bisect.bisect_left(code_starts, keyword_at)
        before = code[k - 1].text if k > 0 else ""
        replacement = ("def " if before in _NO_NONCOMPUTABLE else "noncomputable def ") + local
        pieces += [rest[prev:keyword_at], replacement]
        prev = keyword_at + len("example")
        local_names[i] = local
        renamed = _Renamed(line + offset, column, len(replacement), len(replacement) - 7)
        by_line.setdefault(line + offset, []).append(renamed)
    if not local_names:
        return _Sent(rest, [d.name or "" for d in decls], _Columns({}))
    sent = "".join([*pieces, rest[prev:]])
    # The full names as Lean gives them (namespaces applied), read from the text sent with a
    # line break before each generated one (`declarations` sees commands at a line start).
    split = "".join([*(p if k % 2 == 0 else "\n" + p for k, p in enumerate(pieces)), rest[prev:]])
    generated = set(local_names.values())
    full = {d.local_name: d.name for d in declarations(split) if d.local_name in generated}
    names = [
        (full.get(local_names[i]) or local_names[i]) if i in local_names else (d.name or "")
        for i, d in enumerate(decls)
    ]
    return _Sent(sent, names, _Columns(by_line))


Run = tuple[CommandResponse | None, dict[str, list[str]], tuple[str, str] | None]


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
    pool: ReplPool, header: str, offset: int, rest: str, theorems: list[tuple[str, int]]
) -> FileRun:
    """The file as one command (padded so positions are the file's lines), then the axioms;
    then, with replay on, the file's environment replayed and its theorems' axioms again.
    When the file's command or the axioms' times out or kills the process, the file is judged
    again declaration by declaration (file_by_declaration.py). `theorems`: (full name, file
    line) of each declaration judged."""
    names = tuple(name for name, _ in theorems)
    query = "\n".join(f"#print axioms _root_.{lean_name(name)}" for name in names)
    pickled: bytes | None = None
    deadline = float("inf")
    started = False  # past the header: a failure from here on is the file's text
    try:
        with pool.repl_for(header) as repl:
            started = True
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
                    return FileRun(response, axioms, replayed=exc)
    except HeaderFailure as exc:
        return FileRun(None, failure=("error", str(exc)))
    except ReplFailure as exc:
        if started and exc.reason in SPLIT_ON:
            return run_by_declaration(pool, header, offset, rest, theorems, exc)
        return FileRun(None, failure=(exc.reason, exc.detail))
    axioms = parse_axioms(printed.messages) if printed else {}
    replayed: Replayed = None
    if pickled is not None:
        try:
            replayed = pool.replay(pickled, ReplayPlan(header, names), deadline)
        except ReplayFailed as exc:
            replayed = exc
    return FileRun(response, axioms, replayed=replayed)


def _unfinished_names(rest: str, offset: int, run: FileRun) -> list[str]:
    """Full names of the declarations (any kind) whose command got no answer."""
    if not run.unfinished:
        return []
    return [
        d.name
        for d in declarations(rest)
        if d.name and run.unfinished_at(d.start_line + offset) is not None
    ]


def _dependency_note(text: str, unfinished: list[str]) -> str:
    """For a declaration Lean rejected: whether it names one that got no verdict of its own
    (Lean's error is then likely an unknown identifier, not a wrong proof)."""
    used = uses_unfinished(text, unfinished)
    if used is None:
        return ""
    return f"it uses `{used}`, a declaration that did not elaborate (no answer from Lean)"


def _unjudged_commands(run: FileRun, judged_lines: list[int]) -> list[dict[str, Any]]:
    """An error for each command without a judged declaration that got no answer (a `def`
    that hangs, say): the file is then not accepted, as when such a command fails in Lean."""
    return [
        Message(
            "error",
            f"this command got no answer from Lean ({u.reason}: {u.detail})",
            Pos(u.first_line, 0),
        ).to_json()
        for u in run.unfinished
        if not any(u.holds(line) for line in judged_lines)
    ]


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
    full_name: str,
    response: CommandResponse,
    axioms: dict[str, list[str]],
    allow_native: bool,
) -> Verdict:
    """`name`: as the report shows it; `full_name`: the constant `#print axioms` named."""
    messages = [m.to_json() for m in response.messages]
    if response.errors:
        return Verdict(name, False, "error", messages=messages)
    if has_sorry(response):
        return Verdict(name, False, "sorry", messages=messages)
    found = axioms.get(full_name)
    if found is None:
        return Verdict(
            name,
            False,
            "error",
            messages=messages,
            detail=f"`#print axioms {full_name}` gave no answer",
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


def _banned(text: str, rest_at: int, decls: list[Declaration]) -> dict[int, str]:
    """The scan of the whole file (its header too), one pass: the reason each judged
    declaration is banned (by index). The first banned construct bans every declaration (see
    the module doc); a search tactic bans only the declaration it stands in. `rest_at`: where
    the text after the header starts (declaration offsets)."""
    starts = [d.start + rest_at for d in decls]
    ends = [d.end + rest_at for d in decls]
    words = {t.start: t.text for t in tokenize(text) if t.kind == "ident"}
    own: dict[int, tuple[int, str]] = {}
    first: tuple[int, str] | None = None  # the first that acts beyond its own proof
    for hit in scan(text, file_mode=True):
        k = bisect.bisect_right(starts, hit.offset) - 1
        holder = k if k >= 0 and hit.offset < ends[k] else None
        where = f"{hit.description} at line {text.count(chr(10), 0, hit.offset) + 1}"
        if holder is not None and (holder not in own or hit.offset < own[holder][0]):
            own[holder] = (hit.offset, where)
        if words.get(hit.offset) not in SEARCH_TACTICS and (first is None or hit.offset < first[0]):
            first = (hit.offset, where)
    reasons = {k: where for k, (_, where) in own.items()}
    if first is not None:
        elsewhere = f"{first[1]} (a banned command acts on the whole file)"
        for k in range(len(decls)):
            reasons.setdefault(k, elsewhere)
    return reasons
