"""Byte pipes to one REPL process: a local subprocess (plain or under bwrap) or a container.

The REPL speaks line-framed text (see `protocol.py`); a transport only moves bytes, enforces
deadlines, and kills the whole process tree when asked.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class TransportClosed(Exception):
    """The process closed its output (it exited or crashed)."""


class TransportTimeout(Exception):
    """No complete line arrived before the deadline."""


@dataclass(frozen=True)
class FileExchange:
    """A directory a REPL process can write and read, seen from both sides: `host_dir` here,
    `inner_dir` inside the process's sandbox (bwrap binds its scratch dir as /tmp, a container
    binds it at a mount point, a plain process sees it as it is). Pickled environments travel
    from one REPL to another through it."""

    host_dir: Path
    inner_dir: str

    def inner_path(self, name: str) -> str:
        return f"{self.inner_dir.rstrip('/')}/{name}"

    def host_path(self, name: str) -> Path:
        return self.host_dir / name


class Transport(Protocol):
    """What `LeanRepl` needs from a running REPL process."""

    def write(self, data: bytes, deadline: float) -> None:
        """Send bytes to the process's stdin; TransportClosed on a dead pipe, TransportTimeout
        when the process stops reading before `deadline`."""

    def read_line(self, deadline: float) -> bytes:
        """Next line of stdout without its newline; TransportTimeout past `deadline`
        (a `time.monotonic()` value), TransportClosed at end of output."""

    def kill(self) -> None:
        """Kill the process and everything it started; idempotent."""

    def alive(self) -> bool: ...

    def diagnostics(self) -> str:
        """Exit status and the tail of stderr, for a failure's explanation."""


MAX_LINE_BYTES = 64 * 1024 * 1024  # a line longer than this is a runaway process


def next_line(buf: bytearray, deadline: float, fill: Callable[[float], bool]) -> bytes:
    """Take the next line out of `buf`, calling `fill(timeout)` to read more into it.

    `fill` returns False once the output has ended; a last line without a newline still counts.
    Only newly read bytes are searched for the newline, so a huge line costs linear time.
    """
    searched = 0
    while True:
        nl = buf.find(b"\n", searched)
        if nl >= 0:
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            return line
        searched = len(buf)
        if searched > MAX_LINE_BYTES:
            raise TransportClosed(f"output line over {MAX_LINE_BYTES >> 20} MB")
        remaining = deadline - time.monotonic()
        if not fill(max(remaining, 0.0)):
            if buf.find(b"\n", searched) >= 0:
                continue
            if buf:
                line = bytes(buf)
                buf.clear()
                return line
            raise TransportClosed("end of output")
        if remaining <= 0 and buf.find(b"\n", searched) < 0:
            raise TransportTimeout()


class SubprocessTransport:
    """A REPL started with `subprocess.Popen` in its own process group.

    stderr goes to a file (never a pipe nobody drains, which would block the REPL).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        stderr_path: Path,
        preexec_fn: Callable[[], None] | None = None,
        cleanup: Sequence[Path] = (),
        exchange: FileExchange | None = None,
    ) -> None:
        self.exchange = exchange
        self._stderr_path = stderr_path
        self._cleanup = list(cleanup)
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in kill()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=cwd,
                env=env,
                start_new_session=True,  # own process group: killpg reaches every child
                preexec_fn=preexec_fn,
                bufsize=0,
            )
        except BaseException:
            self._stderr.close()
            self.remove_files()
            raise
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._out_fd = self.proc.stdout.fileno()
        self._in_fd = self.proc.stdin.fileno()
        os.set_blocking(self._out_fd, False)
        os.set_blocking(self._in_fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out_fd, selectors.EVENT_READ)
        self._buf = bytearray()
        self._eof = False
        self._killed = False

    def write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._in_fd, view)
            except BlockingIOError:
                sent = 0
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise TransportClosed(f"stdin closed: {exc}") from exc
            view = view[sent:]
            if view:  # the pipe is full: wait until the process reads, or the deadline
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportTimeout()
                with selectors.DefaultSelector() as sel:
                    sel.register(self._in_fd, selectors.EVENT_WRITE)
                    sel.select(remaining)

    def read_line(self, deadline: float) -> bytes:
        return next_line(self._buf, deadline, self._fill)

    def _fill(self, timeout: float) -> bool:
        """Read what stdout has, waiting up to `timeout` s; False at end of output."""
        if self._eof or self._selector.get_map() is None:
            return False
        if not self._selector.select(timeout):
            return True
        try:
            chunk = os.read(self._out_fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            self._close_output()
            return False
        self._buf += chunk
        return True

    def _close_output(self) -> None:
        if self._selector.get_map() is not None:
            self._selector.close()
        with contextlib.suppress(OSError):
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        if self._eof and self.proc.poll() is None:
            # It closed its output: let it finish exiting so its own status is reported.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1.0)
        # Always the whole group: the leader may be gone while what it started lives on.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a zombie we cannot reap
            self.proc.wait(timeout=10)
        # stdout and its selector stay open: another thread may be blocked reading them, and
        # closing an fd under epoll_wait can drop its wake-up. The reader closes them at end
        # of output (`_fill`); garbage collection does otherwise.
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        self._stderr.close()

    def remove_files(self) -> None:
        """Delete the scratch dir and stderr log (after diagnostics were read)."""
        for path in self._cleanup:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._cleanup = []

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, limit: int = 2000) -> str:
        try:
            if not self._stderr.closed:
                self._stderr.flush()
            with self._stderr_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
                data = f.read()
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def diagnostics(self) -> str:
        code = self.proc.poll()
        if code is None:
            status = "running"
        elif code < 0:
            status = f"killed by signal {signal.Signals(-code).name}"
        else:
            status = f"exit status {code}"
        tail = self.stderr_tail().strip()
        return f"{status}; stderr: {tail[-500:]}" if tail else status
