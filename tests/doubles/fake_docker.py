"""FakeDockerClient: the part of the docker SDK client that `DockerTransport` uses, for machines
where no Docker engine can run.

`containers.create(...)` records its keyword arguments (rejecting any the real SDK would
reject) and returns a FakeContainer. `api.attach_socket(...)` returns one end of a socketpair
wrapped like docker-py wraps a unix socket (a `socket.SocketIO`). On `start()` the container's
entrypoint + command really runs as a local subprocess, and the other end of the socketpair
speaks docker's attach protocol: bytes written go to the process's stdin, and its stdout and
stderr come back as multiplexed frames (8-byte header: stream type, 3 zero bytes, big-endian
length). When the process exits, the stream closes, as docker's does.

Not emulated: the image, user, working directory, limits and read-only root (the command runs
as this user, in this directory, with this process's environment plus `environment`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import struct
import subprocess
import threading
import time
from typing import Any

import docker.errors
from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS

_ids = itertools.count(1)
# What `containers.create` accepts besides the image (same check as docker-py's own).
_CREATE_KWARGS = (set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS)) - {"image", "detach"}


class FakeContainer:
    def __init__(self, client: FakeDockerClient, image: str, kwargs: dict[str, Any]) -> None:
        self.client = client
        self.id = f"fake{next(_ids):012d}"
        self.image = image
        self.kwargs = kwargs
        self.proc: subprocess.Popen[bytes] | None = None
        self.removed = False
        self.kill_calls = 0
        self.attrs: dict[str, Any] = {}
        self._daemon_end: socket.socket | None = None  # the engine's side of the attach socket
        self._send_lock = threading.Lock()
        self._pumps: list[threading.Thread] = []
        self._refresh()

    # --- the SDK surface ---------------------------------------------------------------------

    def start(self) -> None:
        self._check_exists()
        argv = [*(self.kwargs.get("entrypoint") or []), *(self.kwargs.get("command") or [])]
        env = {**os.environ, **(self.kwargs.get("environment") or {})}
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            bufsize=0,
            start_new_session=True,
        )
        if self._daemon_end is not None:
            out = self._pump_output(self.proc.stdout, 1)
            err = self._pump_output(self.proc.stderr, 2)
            threading.Thread(target=self._pump_stdin, daemon=True).start()
            threading.Thread(target=self._close_on_exit, args=([out, err],), daemon=True).start()
        self._refresh()

    def kill(self) -> None:
        self._check_exists()
        self.kill_calls += 1
        if self.proc is None or self.proc.poll() is not None:
            raise docker.errors.APIError(f"Container {self.id} is not running")
        self.proc.kill()
        self.proc.wait()
        self._refresh()

    def remove(self, force: bool = False) -> None:
        self._check_exists()
        if self.proc is not None and self.proc.poll() is None:
            if not force:
                raise docker.errors.APIError(f"cannot remove running container {self.id}")
            self.proc.kill()
            self.proc.wait()
        self.removed = True
        self.client.containers.removed.append(self.id)

    def reload(self) -> None:
        self._check_exists()
        self._refresh()

    # --- what docker's engine does ---------------------------------------------------------

    def attach(self, params: dict[str, Any]) -> socket.SocketIO:
        self._check_exists()
        if self.proc is not None:
            raise AssertionError("attach after start: early output would be lost")
        client_end, self._daemon_end = socket.socketpair()
        self.attach_params = dict(params)
        # docker-py over a unix socket hands back the HTTP response's raw SocketIO.
        return client_end.makefile("rwb", buffering=0)  # type: ignore[return-value]

    def _pump_output(self, stream: Any, kind: int) -> threading.Thread:
        def run() -> None:
            with stream:
                while chunk := os.read(stream.fileno(), 1 << 16):
                    self._send_frame(kind, chunk)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def _send_frame(self, kind: int, payload: bytes) -> None:
        data = struct.pack(">BxxxL", kind, len(payload)) + payload
        split = self.client.split_bytes
        with self._send_lock:
            assert self._daemon_end is not None
            try:
                if not split:
                    self._daemon_end.sendall(data)
                    return
                # Dribble the frame out in small pieces: headers and payloads get split across
                # the reader's recv() calls, as they may be over a real connection.
                for i in range(0, len(data), split):
                    self._daemon_end.sendall(data[i : i + split])
                    time.sleep(0.001)
            except OSError:
                pass  # the client closed its end (killed)

    def _pump_stdin(self) -> None:
        assert self._daemon_end is not None and self.proc is not None
        assert self.proc.stdin is not None
        while True:
            try:
                chunk = self._daemon_end.recv(1 << 16)
            except OSError:
                chunk = b""
            try:
                if not chunk:  # StdinOnce: the client's EOF closes the container's stdin
                    self.proc.stdin.close()
                    return
                self.proc.stdin.write(chunk)
            except OSError:
                return

    def _close_on_exit(self, pumps: list[threading.Thread]) -> None:
        for thread in pumps:
            thread.join()
        assert self.proc is not None and self._daemon_end is not None
        self.proc.wait()
        with self._send_lock:
            with contextlib.suppress(OSError):  # already closed by the other side
                self._daemon_end.shutdown(socket.SHUT_RDWR)
            self._daemon_end.close()

    def _check_exists(self) -> None:
        if self.removed:
            raise docker.errors.NotFound(f"No such container: {self.id}")

    def _refresh(self) -> None:
        code = None if self.proc is None else self.proc.poll()
        running = self.proc is not None and code is None
        oom = self.client.oom_killed and self.proc is not None and not running
        self.attrs = {
            "Id": self.id,
            "State": {
                "Status": "created" if self.proc is None else "running" if running else "exited",
                "Running": running,
                "OOMKilled": oom,
                "ExitCode": 137 if oom else (0 if code is None else _exit_code(code)),
            },
        }


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # signals as docker reports them


class FakeContainers:
    def __init__(self, client: FakeDockerClient) -> None:
        self.client = client
        self.created: list[dict[str, Any]] = []  # create kwargs, image included
        self.all: list[FakeContainer] = []
        self.removed: list[str] = []

    def create(self, image: str, command: Any = None, **kwargs: Any) -> FakeContainer:
        self.client.check_reachable()
        unknown = set(kwargs) - _CREATE_KWARGS
        if unknown:
            raise TypeError(f"create() got unexpected keyword arguments {sorted(unknown)}")
        if image not in self.client.images:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        kwargs = {"command": command, **kwargs}
        self.created.append({"image": image, **kwargs})
        container = FakeContainer(self.client, image, kwargs)
        self.all.append(container)
        return container

    def get(self, container_id: str) -> FakeContainer:
        for container in self.all:
            if container.id == container_id and not container.removed:
                return container
        raise docker.errors.NotFound(f"No such container: {container_id}")


class FakeApi:
    def __init__(self, client: FakeDockerClient) -> None:
        self.client = client

    def attach_socket(
        self, container: Any, params: dict[str, Any] | None = None, ws: bool = False
    ) -> socket.SocketIO:
        self.client.check_reachable()
        container_id = container if isinstance(container, str) else container["Id"]
        return self.client.containers.get(container_id).attach(params or {})


class FakeDockerClient:
    """A docker client double.

    `oom_killed`: containers report State.OOMKilled once their process has exited.
    `split_bytes`: send the attach stream in pieces of this many bytes (0: whole frames).
    `reachable=False`: every call fails as with no engine (docker.errors.DockerException).
    """

    def __init__(
        self,
        *,
        oom_killed: bool = False,
        split_bytes: int = 0,
        reachable: bool = True,
        images: tuple[str, ...] = ("prover",),
    ) -> None:
        self.oom_killed = oom_killed
        self.split_bytes = split_bytes
        self.reachable = reachable
        self.images = set(images)
        self.closed = False
        self.containers = FakeContainers(self)
        self.api = FakeApi(self)

    def check_reachable(self) -> None:
        if not self.reachable:
            raise docker.errors.DockerException(
                "Error while fetching server API version: ('Connection aborted.', "
                "FileNotFoundError(2, 'No such file or directory'))"
            )

    def ping(self) -> bool:
        self.check_reachable()
        return True

    def close(self) -> None:
        self.closed = True
