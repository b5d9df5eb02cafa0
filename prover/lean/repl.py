"""One Lean REPL process: framing over a transport, its header environment, failures typed.

Every failure of the process (deadline, death, dead pipe, garbage) raises `ReplFailure` with
the verdict reason it maps to, after which the process is dead and must be replaced.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from prover.errors import MachineryFailure
from prover.lean.protocol import (
    CommandResponse,
    ReplError,
    Response,
    TacticResponse,
    UnencodableRequest,
    command_request,
    encode_request,
    parse_response_text,
    pickle_request,
    tactic_request,
    unpickle_request,
)
from prover.lean.transport import FileExchange, Transport, TransportClosed, TransportTimeout

# What a process says when an allocation failed under its address-space cap (Lean's runtime,
# the C++ allocator, a Python test double); the exit alone never says "memory".
_MEMORY_EVIDENCE = re.compile(
    r"out of memory|bad_alloc|cannot allocate memory|MemoryError|memory exhausted|OOMKilled",
    re.IGNORECASE,
)
# A response bigger than this is a runaway process, not an answer.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

VERSION_QUERY = "#eval Lean.versionString"


class ReplFailure(Exception):
    """The process failed (`timeout`, `memory`, `crash`), or a request could not be sent at
    all (`invalid_input`: the process is then untouched)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses process boundaries (Ray)
        return (ReplFailure, (self.reason, self.detail))


class ReplRefused(Exception):
    """The REPL answered a pickle or unpickle request with `{"message": ...}`; the process
    itself is fine."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HeaderFailure(MachineryFailure):
    """Lean answered the header with errors: no proof can be judged against it. Machinery for
    a benchmark's header (the suite or the installation is broken, not the model); FILE mode
    and `prover serve` report it as the file's or the snippet's own error."""

    def __init__(self, response: CommandResponse) -> None:
        first = response.errors[0].data if response.errors else "unknown error"
        super().__init__(f"header does not elaborate: {first.splitlines()[0] if first else ''}")
        self.response = response

    def __reduce__(self) -> tuple[type, tuple[str]]:  # across processes (Ray): the line only
        return (MachineryFailure, (self.cause,))


class StartFailure(MachineryFailure):
    """The REPL process could not start, or died, hung or ran out of memory while elaborating
    its header: nothing the model wrote had been sent. `failure` says how it failed."""

    def __init__(self, failure: ReplFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure

    def __reduce__(self) -> tuple[type, tuple[str]]:  # across processes (Ray): the line only
        return (MachineryFailure, (self.cause,))


# How often a long header elaboration says it is still going.
HEADER_PROGRESS_EVERY_S = 30.0


class LeanRepl:
    """A started REPL process with its header elaborated once (environment `header_env`)."""

    def __init__(
        self,
        transport: Transport,
        header: str,
        *,
        key: str = "",
        header_timeout: float = 300.0,
        on_header_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.header = header
        self.key = key  # the pool's grouping key for `header`
        self.checks_done = 0
        self.references: dict[str, int] = {}  # context + statement -> env of its reference
        self.contexts: dict[str, int] = {}  # text above a theorem -> its env
        self._transport = transport
        self.header_env: int | None = None
        self.dead = False
        try:
            response = (
                self.command(header, env=None, timeout=header_timeout, on_wait=on_header_wait)
                if header.strip()
                else None
            )
        except ReplFailure as exc:
            # Only a death that left no stderr suggests the address-space cap: when the REPL
            # said why (`lake: error: ...`), its own words are the explanation.
            silent = "REPL died" in exc.detail and "stderr:" not in exc.detail
            hint = (
                "; a REPL that dies silently while importing Mathlib usually lacks address "
                "space (it needs about 9 GB: raise --memory-mb)"
                if exc.reason == "crash" and silent
                else "; raise --memory-mb"
                if exc.reason == "memory"
                else "; raise --header-timeout if a cold import is this slow here"
                if exc.reason == "timeout"
                else ""
            )
            raise StartFailure(
                ReplFailure(exc.reason, f"while elaborating the header: {exc.detail}{hint}")
            ) from None
        if response is not None:
            if response.errors:
                self.close()
                raise HeaderFailure(response)
            self.header_env = response.env

    def send(
        self,
        request: dict[str, Any],
        timeout: float,
        on_wait: Callable[[float], None] | None = None,
    ) -> Response:
        """Send one request and read its one response, within `timeout` seconds; `on_wait`
        is called with the seconds waited so far every HEADER_PROGRESS_EVERY_S."""
        if self.dead:
            raise ReplFailure("crash", "process already dead")
        try:
            payload = encode_request(request)
        except UnencodableRequest as exc:  # nothing was written: the process is still good
            raise ReplFailure("invalid_input", str(exc)) from None
        began = time.monotonic()
        deadline = began + timeout
        tick = began + HEADER_PROGRESS_EVERY_S if on_wait else deadline
        try:
            self._transport.write(payload, deadline)
            lines: list[str] = []
            size = 0
            while True:
                try:
                    raw = self._transport.read_line(min(deadline, tick))
                except TransportTimeout:
                    if time.monotonic() >= deadline or on_wait is None:
                        raise
                    on_wait(time.monotonic() - began)  # the partial line stays buffered
                    tick += HEADER_PROGRESS_EVERY_S
                    continue
                if time.monotonic() > deadline:  # output that never ends must not outlive it
                    raise TransportTimeout()
                size += len(raw)
                if size > MAX_RESPONSE_BYTES:
                    raise ValueError(f"response over {MAX_RESPONSE_BYTES >> 20} MB")
                line = raw.decode("utf-8", "replace")
                if line.strip() == "":
                    if lines:
                        break
                    continue  # tolerate stray blank lines between responses
                lines.append(line)
            return parse_response_text("\n".join(lines))
        except TransportTimeout:
            self._fail()
            raise ReplFailure("timeout", f"no answer within {timeout:g} s") from None
        except TransportClosed as exc:
            diag = self._fail()
            reason = "memory" if _MEMORY_EVIDENCE.search(diag) else "crash"
            raise ReplFailure(reason, f"REPL died ({exc}; {diag})") from None
        except Exception as exc:  # garbage: unparseable, malformed, absurdly large or deep
            diag = self._fail()
            raise ReplFailure("crash", f"garbage output: {exc} ({diag})") from None

    def command(
        self,
        cmd: str,
        env: int | None,
        timeout: float,
        on_wait: Callable[[float], None] | None = None,
    ) -> CommandResponse:
        response = self.send(command_request(cmd, env), timeout, on_wait)
        if isinstance(response, ReplError):
            # Only our own bookkeeping could cause this (an env id we did not get): the
            # process cannot be trusted any more.
            self._fail()
            raise ReplFailure("crash", f"REPL refused the request: {response.message}")
        if not isinstance(response, CommandResponse):
            self._fail()
            raise ReplFailure("crash", "REPL answered a command with a tactic response")
        return response

    def tactic(self, tactic: str, proof_state: int, timeout: float) -> TacticResponse | ReplError:
        """Run `tactic` (sent exactly as given) in proof state `proof_state` of this process.
        A `Lean error` answer (a tactic that does not parse, or throws) is returned: it is the
        tactic's own failure. Any other refusal (`Unknown proof state.`) can only come from our
        own bookkeeping: the process is then not trusted any more (ReplFailure `crash`)."""
        response = self.send(tactic_request(tactic, proof_state), timeout)
        if isinstance(response, ReplError):
            if response.is_lean_error:
                return response
            self._fail()
            raise ReplFailure("crash", f"REPL refused the tactic: {response.message}")
        if not isinstance(response, TacticResponse):
            self._fail()
            raise ReplFailure("crash", "REPL answered a tactic with a command response")
        return response

    def pickle_env(self, env: int, path: str, timeout: float) -> None:
        """Save environment `env` to `path` (a path as this process sees it)."""
        self._env_answer(pickle_request(env, path), timeout, "pickleTo")

    def unpickle_env(self, path: str, timeout: float) -> int:
        """Rebuild the environment pickled at `path`; its new env id."""
        return self._env_answer(unpickle_request(path), timeout, "unpickleEnvFrom")

    def _env_answer(self, request: dict[str, Any], timeout: float, what: str) -> int:
        response = self.send(request, timeout)
        if isinstance(response, ReplError):
            raise ReplRefused(response.message)
        if not isinstance(response, CommandResponse) or response.env is None:
            self._fail()
            raise ReplFailure("crash", f"REPL answered {what} without an environment")
        if response.errors:
            raise ReplRefused(response.errors[0].data)
        return response.env

    @property
    def exchange(self) -> FileExchange | None:
        """The directory pickles pass through, when this process's transport has one."""
        return getattr(self._transport, "exchange", None)

    def lean_version(self, timeout: float = 30.0) -> str | None:
        response = self.command(VERSION_QUERY, env=self.header_env, timeout=timeout)
        for message in response.messages:
            if message.severity == "info":
                return message.data.strip().strip('"')
        return None

    def alive(self) -> bool:
        return not self.dead and self._transport.alive()

    def _fail(self) -> str:
        self.dead = True
        self._transport.kill()
        diagnostics = self._transport.diagnostics()
        self._remove_files()
        return diagnostics

    def close(self) -> None:
        self.dead = True
        self._transport.kill()
        self._remove_files()

    def _remove_files(self) -> None:
        remove = getattr(self._transport, "remove_files", None)
        if remove is not None:
            remove()
