"""FILE mode's second try: the file judged declaration by declaration.

When the file sent as one command times out or kills its process, that failure says nothing
about most of its theorems. The file is then sent again, each top-level command as a REPL
command of its own (in order, each on the environment of the previous one that finished, each
with its own `--timeout`), so a verdict is about its own declaration: the one that hangs gets
`timeout`, the one that kills Lean `crash`, the others their own. The REPL keeps the scopes
(`namespace`, `open`, `variable`) in the environment it hands on from one command to the next
(leanprover-community/repl, `test/variables.in`, `test/pickle_open.in`), so the commands mean
what they mean in the file. After a process dies, a new one elaborates the commands that had
finished again, each on its own, before going on.

Positions stay the file's: each command is sent after as many blank lines as precede it in
the file. Top-level commands are `source.top_level_commands`; a `mutual ... end` block is one
command to Lean, and so is a `deriving` clause under the `inductive`/`structure` above it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

from prover.errors import MachineryFailure
from prover.lean.acceptance import parse_axioms
from prover.lean.commands import lean_name
from prover.lean.lexer import line_col, tokenize
from prover.lean.machinery import canary_item
from prover.lean.pool import ReplPool
from prover.lean.protocol import CommandResponse, Message, Sorry
from prover.lean.repl import LeanRepl, ReplFailure
from prover.lean.replay import ReplayFailed, ReplayPlan, pickle_env
from prover.lean.source import top_level_commands

# What a whole-file failure must be for the second try: the process failed on the file's text.
SPLIT_ON = ("timeout", "memory", "crash")

Replayed = dict[str, list[str]] | ReplayFailed | None
log = logging.getLogger(__name__)  # unconfigured: WARNING lines reach stderr


@dataclass(frozen=True)
class Piece:
    """One command (or a block Lean reads as one) of the text after the header."""

    text: str
    first_line: int  # the file's line of its first character (1-based)
    last_line: int  # the file's line of its last character


@dataclass(frozen=True)
class Unfinished:
    """A piece whose command got no answer: the lines it spans, and what happened."""

    first_line: int
    last_line: int
    reason: str  # timeout, memory, crash
    detail: str

    def holds(self, line: int) -> bool:
        return self.first_line <= line <= self.last_line


@dataclass
class FileRun:
    """What Lean said about the file, however it was sent."""

    response: CommandResponse | None  # every finished command's messages (the file's lines)
    axioms: dict[str, list[str]] = field(default_factory=dict)
    failure: tuple[str, str] | None = None  # (reason, detail) for every declaration not judged
    replayed: Replayed = None
    unfinished: list[Unfinished] = field(default_factory=list)
    split_because: str | None = None  # the whole-file failure that made it go by declaration

    def unfinished_at(self, line: int) -> Unfinished | None:
        return next((u for u in self.unfinished if u.holds(line)), None)


def pieces(rest: str, offset: int) -> list[Piece]:
    """`rest` cut at its top-level commands; every character is in exactly one piece (text
    before the first command goes with it). `offset`: the file's lines before `rest`."""
    commands = top_level_commands(rest)
    starts: list[int] = [0]
    in_mutual = False
    for k, command in enumerate(commands):
        if in_mutual:  # `mutual ... end`: one command to Lean
            in_mutual = command.keyword != "end"
            continue
        in_mutual = command.keyword == "mutual"
        if command.keyword == "deriving" and not _deriving_instance(rest, command.keyword_offset):
            continue  # the `deriving` clause of the declaration above
        if k > 0 and command.start > 0:
            starts.append(command.start)
    line_of = line_col(rest)
    out = []
    for start, end in zip(starts, [*starts[1:], len(rest)], strict=True):
        text = rest[start:end]
        last = start + max(len(text.rstrip()) - 1, 0)
        out.append(Piece(text, line_of(start)[0] + offset, line_of(last)[0] + offset))
    return [p for p in out if p.text.strip()]


def _deriving_instance(rest: str, at: int) -> bool:
    """`deriving instance C for T` is a command; a bare `deriving C` ends the one above."""
    code = (t for t in tokenize(rest[at : at + 200]) if t.kind not in ("comment", "doc_comment"))
    next(code, None)
    following = next(code, None)
    return following is not None and following.text == "instance"


class _Lost(Exception):
    """No process holds the environment any more: a new one cannot start or cannot rebuild it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Chain:
    """One process at a time whose environment `env` holds every piece that finished.

    After a process died (`crash`), its replacement first runs a known-good check: a Lean that
    dies on everything is the machinery's failure, never the declarations' verdict (as
    `ReplPool.check` does for one proof)."""

    def __init__(
        self, pool: ReplPool, header: str, stack: contextlib.ExitStack, *, crashed: bool
    ) -> None:
        self._pool = pool
        self._header = header
        self._stack = stack
        self._repl: LeanRepl | None = None
        self.env: int | None = None
        self._kept: list[str] = []  # padded texts of the pieces that finished, in order
        self.crashed = crashed  # the last process died: the next one proves itself first

    def live(self) -> LeanRepl:
        """The process, replaced (and the environment rebuilt) if it died."""
        if self._repl is not None and not self._repl.dead:
            return self._repl
        self._stack.close()  # the dead process goes back to the pool before a new one starts
        try:
            repl = self._stack.enter_context(self._pool.repl_for(self._header))
        except ReplFailure as exc:  # MachineryFailure and HeaderFailure go to the caller
            raise _Lost(exc.reason, f"a new process could not start: {exc.detail}") from None
        if self.crashed:
            self._canary(repl)
            self.crashed = False
        env = repl.header_env
        for text in self._kept:
            try:
                env = repl.command(text, env=env, timeout=self._pool.config.timeout).env
            except ReplFailure as exc:
                detail = f"the declarations before it did not elaborate again: {exc.detail}"
                raise _Lost(exc.reason, detail) from None
        self._repl, self.env = repl, env
        return repl

    def _canary(self, repl: LeanRepl) -> None:
        item = canary_item(self._header)
        try:
            answer = repl.command(
                f"{item.formal_statement} {item.proof}",
                env=repl.header_env,
                timeout=self._pool.config.timeout,
            )
            failed = answer.errors[0].data if answer.errors else None
        except ReplFailure as exc:
            failed = f"{exc.reason}: {exc.detail}"
        if failed is not None:
            failed = " ".join(failed.split())  # one line: the CLI prints it as one
            raise MachineryFailure(
                f"a declaration's REPL died, and then a known-good check failed too ({failed})"
            )

    def run(self, text: str) -> CommandResponse:
        """One piece on the environment so far; kept if Lean answered with an environment."""
        repl = self.live()
        response = repl.command(text, env=self.env, timeout=self._pool.config.timeout)
        repl.checks_done += 1
        if response.env is not None:
            self.env = response.env
            self._kept.append(text)
        return response


def run_by_declaration(
    pool: ReplPool,
    header: str,
    offset: int,
    rest: str,
    theorems: list[tuple[str, int]],
    because: ReplFailure,
) -> FileRun:
    """Judge `rest` piece by piece (module doc). `theorems`: (full name, file line) of each
    declaration whose axioms are asked; `because`: the whole-file failure."""
    run = FileRun(None, split_because=f"{because.reason}: {because.detail}")
    log.warning(
        "prover: the file as one command got no answer (%s): judging each declaration on its own",
        because.reason,
    )
    messages: list[Message] = []
    sorries: list[Sorry] = []
    all_pieces = pieces(rest, offset)
    pickled: bytes | None = None
    names: tuple[str, ...] = ()
    with contextlib.ExitStack() as stack:
        chain = _Chain(pool, header, stack, crashed=because.reason == "crash")
        for k, piece in enumerate(all_pieces):
            try:
                response = chain.run("\n" * (piece.first_line - 1) + piece.text.rstrip("\n"))
            except ReplFailure as exc:
                run.unfinished.append(
                    Unfinished(piece.first_line, piece.last_line, exc.reason, exc.detail)
                )
                chain.crashed = exc.reason == "crash"
                continue
            except _Lost as exc:
                run.unfinished += [
                    Unfinished(p.first_line, p.last_line, exc.reason, exc.detail)
                    for p in all_pieces[k:]
                ]
                break
            messages += response.messages
            sorries += response.sorries
        names = tuple(name for name, line in theorems if run.unfinished_at(line) is None)
        try:
            if names:
                repl = chain.live()
                query = "\n".join(f"#print axioms _root_.{lean_name(n)}" for n in names)
                printed = repl.command(query, env=chain.env, timeout=pool.config.timeout)
                run.axioms = parse_axioms(printed.messages)
            if names and pool.replays_on(repl) and chain.env is not None:
                pool.require_replay_support()
                try:
                    pickled = pickle_env(repl, chain.env, pool.config.timeout)
                except ReplayFailed as exc:
                    run.replayed = exc
        except (ReplFailure, _Lost) as exc:
            run.failure = (exc.reason, f"#print axioms: {exc.detail}")
        run.response = CommandResponse(chain.env, tuple(messages), tuple(sorries))
    if pickled is not None and run.failure is None:
        deadline = time.monotonic() + pool.config.timeout
        try:
            run.replayed = pool.replay(pickled, ReplayPlan(header, names), deadline)
        except ReplayFailed as exc:
            run.replayed = exc
    return run


def uses_unfinished(text: str, unfinished_names: list[str]) -> str | None:
    """The first of `unfinished_names` (full names) that `text` names, written in full or by a
    shorter suffix (`bar` or `Foo.bar` for `Foo.bar`); None if none."""
    if not unfinished_names:
        return None
    idents = {t.text for t in tokenize(text) if t.kind == "ident"}
    for name in unfinished_names:
        parts = name.split(".")
        if any(".".join(parts[k:]) in idents for k in range(len(parts))):
            return name
    return None
