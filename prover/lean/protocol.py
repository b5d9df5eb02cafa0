"""The Lean REPL's wire protocol (leanprover-community/repl: README.md, REPL/Main.lean `getLines`).

Requests: one JSON object, then exactly one blank line. The REPL reads lines up to a blank
one and concatenates them after trimming each line's end, so only `json.dumps` escapes are
safe for multi-line Lean code. Responses: pretty-printed JSON over several lines, then one
empty line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class ProtocolError(Exception):
    """The REPL's output is not a response (garbage, truncated, not an object)."""


class UnencodableRequest(ValueError):
    """A request holding a lone surrogate: it has no UTF-8 form, so it cannot be sent."""


def encode_request(request: dict[str, Any]) -> bytes:
    # Raw UTF-8, not \u escapes: older Lean JSON parsers do not join surrogate pairs, so
    # `𝓝` (U+1D4DD) sent escaped would arrive broken. json.dumps still escapes every control
    # character, so the request stays on one line.
    text = json.dumps(request, ensure_ascii=False) + "\n\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Raised before a byte is written (the process stays usable). Escaping it as \ud800
        # instead would leave Lean's JSON parser to decide what a lone surrogate becomes.
        raise UnencodableRequest(
            f"the text holds a lone surrogate (U+{ord(text[exc.start]):04X}), which has no "
            "UTF-8 form: it cannot be sent to Lean"
        ) from None


def command_request(cmd: str, env: int | None = None, **options: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"cmd": cmd}
    if env is not None:
        request["env"] = env
    request.update(options)
    return request


def tactic_request(tactic: str, proof_state: int) -> dict[str, Any]:
    """Run `tactic` in proof state `proof_state` (an id this same process gave: from a
    command's `sorries` or an earlier tactic answer). REPL/JSON.lean `ProofStep`."""
    return {"tactic": tactic, "proofState": proof_state}


def pickle_request(env: int, path: str) -> dict[str, Any]:
    """Save environment `env` (its imports and its own constants) to `path`."""
    return {"pickleTo": path, "env": env}


def unpickle_request(path: str) -> dict[str, Any]:
    """Rebuild a pickled environment in this process; up to REPL v4.29 every constant goes
    through the kernel again (see `replay.py`)."""
    return {"unpickleEnvFrom": path}


@dataclass(frozen=True)
class Pos:
    line: int
    column: int

    @classmethod
    def from_json(cls, obj: Any) -> Pos | None:
        if obj is None:
            return None
        return cls(int(obj["line"]), int(obj["column"]))


@dataclass(frozen=True)
class Message:
    severity: str  # "info" | "warning" | "error" | "trace"
    data: str
    pos: Pos | None = None
    end_pos: Pos | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Message:
        return cls(
            severity=str(obj["severity"]),
            data=str(obj["data"]),
            pos=Pos.from_json(obj.get("pos")),
            end_pos=Pos.from_json(obj.get("endPos")),
        )

    def to_json(self) -> dict[str, Any]:
        def pos(p: Pos | None) -> dict[str, int] | None:
            return None if p is None else {"line": p.line, "column": p.column}

        return {
            "severity": self.severity,
            "pos": pos(self.pos),
            "endPos": pos(self.end_pos),
            "data": self.data,
        }


@dataclass(frozen=True)
class Sorry:
    goal: str
    proof_state: int | None = None
    pos: Pos | None = None
    end_pos: Pos | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Sorry:
        ps = obj.get("proofState")
        return cls(
            goal=str(obj.get("goal", "")),
            proof_state=None if ps is None else int(ps),
            pos=Pos.from_json(obj.get("pos")),
            end_pos=Pos.from_json(obj.get("endPos")),
        )


@dataclass(frozen=True)
class CommandResponse:
    """Answer to a command or file request. A clean success is exactly `{"env": N}`."""

    env: int | None
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.severity == "error")


@dataclass(frozen=True)
class TacticResponse:
    """Answer to a tactic request (REPL/JSON.lean `ProofStepResponse`): the new proof state's
    id and its goals, one pretty-printed text each. A tactic that fails with an error message
    still gets a new proof state (with `goals: []`). `sorries` are the sorries the tactic
    introduced, each with a proof state of its own. `proof_status` ("Completed",
    "Incomplete: ...", "Error: ...") exists only in REPLs from April 2025 on (REPL/Main.lean
    `getProofStatus`); `tactics.tactic_outcome` reads all of it."""

    proof_state: int
    goals: tuple[str, ...]
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    traces: tuple[str, ...] = ()
    proof_status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.severity == "error")


# REPL/Main.lean `runProofStep`: an exception thrown while parsing or running a tactic comes
# back as `{"message": "Lean error:\n..."}` (the tactic's own failure, the process is fine).
LEAN_ERROR_PREFIX = "Lean error:"


@dataclass(frozen=True)
class ReplError:
    """The request itself failed: unknown environment or proof state, or a Lean exception."""

    message: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_lean_error(self) -> bool:
        """A tactic that did not parse or threw (`exact?` finding nothing, a heartbeat
        timeout): the tactic's own failure, not a refused request."""
        return self.message.startswith(LEAN_ERROR_PREFIX)


Response = CommandResponse | TacticResponse | ReplError


def parse_response(obj: Any) -> Response:
    if not isinstance(obj, dict):
        raise ProtocolError(f"response is not a JSON object: {str(obj)[:200]}")
    try:
        messages = tuple(Message.from_json(m) for m in obj.get("messages", ()))
        sorries = tuple(Sorry.from_json(s) for s in obj.get("sorries", ()))
        if "proofState" in obj and "goals" in obj:
            return TacticResponse(
                proof_state=int(obj["proofState"]),
                goals=tuple(str(g) for g in obj["goals"]),
                messages=messages,
                sorries=sorries,
                traces=tuple(str(t) for t in obj.get("traces", ())),
                proof_status=obj.get("proofStatus"),
                raw=obj,
            )
        if "env" in obj or "messages" in obj or "sorries" in obj or not obj:
            env = obj.get("env")
            return CommandResponse(
                env=None if env is None else int(env), messages=messages, sorries=sorries, raw=obj
            )
        if "message" in obj:
            return ReplError(message=str(obj["message"]), raw=obj)
        # pickle answers are command-shaped; anything else is kept raw.
        return CommandResponse(env=None, raw=obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed response field: {exc!r}") from exc


def parse_response_text(text: str) -> Response:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"unparseable output: {text[:200]!r}") from exc
    return parse_response(obj)


def split_responses(stdout_text: str) -> list[str]:
    """Split a recorded stdout into response texts (each ended by an empty line)."""
    blocks: list[str] = []
    current: list[str] = []
    for line in stdout_text.split("\n"):
        if line.strip() == "":
            if current:
                blocks.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def split_requests(stdin_text: str) -> list[str]:
    """Split stdin text the way the REPL reads it: blocks of lines up to a blank line, each
    line's end trimmed, concatenated with no separator. A block starting with `#` or `--`
    is a comment the REPL skips without answering; callers filter with `is_skipped`."""
    requests: list[str] = []
    current: list[str] = []
    for line in stdin_text.split("\n"):
        if line.strip() == "":
            if current:
                requests.append("".join(current))
                current = []
        else:
            current.append(line.rstrip())
    if current:
        requests.append("".join(current))
    return requests


def is_skipped(request_text: str) -> bool:
    stripped = request_text.lstrip()
    return stripped.startswith("#") or stripped.startswith("--")
