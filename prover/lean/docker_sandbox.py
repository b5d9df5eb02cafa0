"""One REPL per Docker container from the project's own image, spoken to over docker's attach
socket.

Used when the host runs the `prover` CLI outside the container: each REPL worker gets a fresh
container with no network, a memory cap without swap, a pid cap, a read-only root file system
and a non-root user, so a proof cannot reach the host, the network or the Mathlib build.

The `docker` SDK is imported lazily: the rest of the project works without it.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prover import errors
from prover.lean.transport import FileExchange, TransportClosed, TransportTimeout, next_line

DEFAULT_IMAGE = "prover"
# Label on every REPL container, so leaked ones can be found (`docker ps -f label=...`).
LABEL = "prover.role"
LABEL_VALUE = "lean-repl"

_HEADER = struct.Struct(">BxxxL")  # docker attach frame: stream type, 3 pad bytes, length
_STDOUT, _STDERR = 1, 2
_STDERR_KEEP = 16_384  # bytes of stderr kept for diagnostics
_EXIT_WAIT_S = 2.0  # after EOF the engine may need a moment to record the exit state
# Where a container sees its exchange dir (a host dir bound read-write): pickled environments
# pass through it from a checking REPL to a replaying one (see `pool.py`). The tmpfs /tmp
# cannot serve: the engine's archive API does not see into tmpfs mounts.
EXCHANGE_MOUNT = "/prover-exchange"


class SandboxUnavailable(errors.SandboxUnavailable):
    """Docker cannot run the REPL here (engine unreachable, image missing, create refused).

    A subclass of `sandbox.SandboxUnavailable`, so callers handle every sandbox alike."""


def _one_line(text: object, limit: int = 240) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _unreachable(exc: BaseException) -> SandboxUnavailable:
    return SandboxUnavailable(
        _one_line(
            f"Docker is not reachable ({_one_line(exc, 120)}); "
            "start the Docker engine or use --sandbox bwrap"
        )
    )


def connect(client_factory: Callable[[], Any] | None = None) -> Any:
    """A docker client whose engine answered a ping; SandboxUnavailable otherwise."""
    try:
        import docker
    except ImportError as exc:
        raise SandboxUnavailable(
            "the docker Python SDK is not installed (pip install docker); or use --sandbox bwrap"
        ) from exc
    factory = client_factory or docker.from_env
    try:
        client = factory()
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:  # OSError covers requests' errors
        raise _unreachable(exc) from exc
    return client


def docker_available(client_factory: Callable[[], Any] | None = None) -> tuple[bool, str]:
    """Whether a Docker engine answers, with a one-line explanation."""
    try:
        client = connect(client_factory)
    except SandboxUnavailable as exc:
        return False, str(exc)
    close = getattr(client, "close", None)
    if callable(close):
        close()
    return True, "Docker engine reachable"


class DockerTransport:
    """A REPL in its own container; implements `prover.lean.transport.Transport`.

    `argv` replaces the image's entrypoint (`prover`). The container's environment is the
    image's ENV plus `environment`: nothing of the host's environment is passed on.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        client: Any | None = None,
        image: str = DEFAULT_IMAGE,
        memory_mb: int = 12288,
        pids_limit: int = 256,
        user: str = "lean",
        workdir: str = "/opt/lean/mathlib4",
        environment: Mapping[str, str] | None = None,
        exchange_dir: Path | None = None,
    ) -> None:
        if not argv:
            raise ValueError("argv must name the program to run")
        if user in ("root", "0") or user.startswith(("root:", "0:")):
            raise ValueError("the REPL container must not run as root")
        self._own_client = client is None
        self._client = connect() if client is None else client
        import docker.errors as derr  # present: connect() checked it, or a client was given
        from docker.types import Mount

        mounts = []
        if exchange_dir is not None:
            mounts.append(Mount(EXCHANGE_MOUNT, str(exchange_dir), type="bind", read_only=False))

        self._buf = bytearray()  # demultiplexed stdout, not yet returned as lines
        self._raw = bytearray()  # attach stream bytes not yet parsed into frames
        self._stderr = bytearray()
        self._eof = False
        self._killed = False
        self._final_state: dict[str, Any] | None = None  # inspected before removal
        self._container: Any = None
        self._exchange_dir = exchange_dir
        self.exchange = None if exchange_dir is None else FileExchange(exchange_dir, EXCHANGE_MOUNT)
        self._attach: Any = None  # what attach_socket returned (keeps the HTTP response alive)
        self._sock: Any = None  # the socket under it
        memory = int(memory_mb) * 1024 * 1024
        try:
            self._container = self._client.containers.create(
                image,
                entrypoint=[argv[0]],
                command=list(argv[1:]),
                stdin_open=True,  # docker-py adds StdinOnce: closing our socket ends its stdin
                tty=False,  # no TTY: stdout and stderr stay separate (multiplexed frames)
                network_disabled=True,
                mem_limit=memory,
                memswap_limit=memory,  # equal to mem_limit: no swap, OOM instead of thrashing
                pids_limit=pids_limit,
                read_only=True,
                tmpfs={"/tmp": "rw,nosuid,nodev,size=1g,mode=1777"},  # pickles, Lean temp files
                user=user,
                working_dir=workdir,
                environment=dict(environment or {}),
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mounts=mounts,
                labels={LABEL: LABEL_VALUE},
                auto_remove=False,  # kept after exit so diagnostics() can read its exit state
            )
            # Attach before start: no early output is lost, and stdin is connected in time.
            self._attach = self._client.api.attach_socket(
                self._container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            # docker-py returns a SocketIO wrapper over unix sockets; use the socket itself.
            self._sock = getattr(self._attach, "_sock", self._attach)
            self._container.start()
        except derr.ImageNotFound as exc:
            self._cleanup()
            raise SandboxUnavailable(
                f"Docker image {image!r} not found; build it with `docker build -t {image} .`"
                " or use --sandbox bwrap"
            ) from exc
        except derr.APIError as exc:  # the engine answered, and refused
            self._cleanup()
            raise SandboxUnavailable(
                _one_line(f"Docker refused the REPL container: {exc}")
            ) from exc
        except (derr.DockerException, OSError) as exc:
            self._cleanup()
            raise _unreachable(exc) from exc

    # --- Transport ---------------------------------------------------------------------------

    def write(self, data: bytes, deadline: float) -> None:
        if self._killed or self._eof:
            raise TransportClosed("container stopped")
        previous = self._sock.gettimeout()
        try:
            # a container that stops reading must not block us past the deadline
            remaining = max(deadline - time.monotonic(), 0.001)
            self._sock.settimeout(remaining if remaining < 1e9 else None)
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise TransportTimeout() from exc
        except OSError as exc:
            raise TransportClosed(f"stdin closed: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(previous)

    def read_line(self, deadline: float) -> bytes:
        return next_line(self._buf, deadline, self._fill)

    def _fill(self, timeout: float) -> bool:
        if self._eof or self._killed:
            return False
        self._pump(timeout)
        return not self._eof

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        self._cleanup()

    def alive(self) -> bool:
        if self._killed:
            return False
        self._pump(0)  # notices an exit (EOF) already waiting on the socket
        return not self._eof

    def diagnostics(self) -> str:
        if not self._killed:
            self._pump(0)  # pick up stderr written just before an exit
        if self._killed or self._container is None:
            state = self._final_state
        else:
            state = _inspect(self._container, wait_exit=self._eof)
        status = _describe(state, killed=self._killed)
        tail = self._stderr[-2000:].decode("utf-8", "replace").strip()
        return f"{status}; stderr: {tail[-500:]}" if tail else status

    # --- internals ---------------------------------------------------------------------------

    def _pump(self, timeout: float) -> None:
        """Read what the socket has (waiting up to `timeout` s) and demultiplex it."""
        try:
            pending = getattr(self._sock, "pending", None)  # TLS may hold decrypted bytes
            if not (callable(pending) and pending() > 0):
                ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
                if not ready:
                    return
            chunk = self._sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError):  # a closed or broken socket ends the output
            chunk = b""
        if not chunk:
            self._eof = True
            return
        self._raw += chunk
        self._demux()

    def _demux(self) -> None:
        while len(self._raw) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._raw)
            end = _HEADER.size + size
            if len(self._raw) < end:
                return  # the rest of the frame has not arrived yet
            payload = bytes(self._raw[_HEADER.size : end])
            del self._raw[:end]
            if stream == _STDERR:
                self._stderr += payload
                del self._stderr[:-_STDERR_KEEP]
            elif stream in (0, _STDOUT):  # 0 (stdin) is docker's own, written as stdout
                self._buf += payload

    def _cleanup(self) -> None:
        """Kill and remove the container, close the socket; tolerant of anything being gone."""
        container, self._container = self._container, None
        if container is not None:
            # Inspected before removal: afterwards the exit code and OOM flag are gone.
            self._final_state = _inspect(container, wait_exit=self._eof)
            # Either may fail: already exited, already removed, engine gone.
            with contextlib.suppress(Exception):
                container.kill()
            with contextlib.suppress(Exception):
                container.remove(force=True)
        for obj in (self._attach, self._sock):
            if obj is not None:
                with contextlib.suppress(OSError):
                    obj.close()
        self._attach = self._sock = None
        if self._exchange_dir is not None:
            shutil.rmtree(self._exchange_dir, ignore_errors=True)
            self._exchange_dir = None
        if self._own_client:
            close = getattr(self._client, "close", None)
            if callable(close):
                close()


def _inspect(container: Any, *, wait_exit: bool = False) -> dict[str, Any] | None:
    """The container's State; after EOF, waits briefly for the engine to record the exit."""
    give_up = time.monotonic() + (_EXIT_WAIT_S if wait_exit else 0.0)
    while True:
        try:
            container.reload()
            state = dict(container.attrs.get("State") or {})
        except Exception:  # noqa: BLE001 - gone or engine away: diagnostics stay best-effort
            return None
        if not state.get("Running") or time.monotonic() >= give_up:
            return state
        time.sleep(0.05)


def _describe(state: dict[str, Any] | None, *, killed: bool) -> str:
    if state is None:
        return "killed" if killed else "container state unknown"
    if state.get("OOMKilled"):
        return f"out of memory (container OOM-killed, exit code {state.get('ExitCode')})"
    if state.get("Running"):
        return "killed" if killed else "running"
    return f"exit status {state.get('ExitCode')}"
