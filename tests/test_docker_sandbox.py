"""DockerTransport against FakeDockerClient: no Docker engine runs here, but the fake runs the
command as a real subprocess behind docker's multiplexed attach framing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from prover.lean import sandbox
from prover.lean.docker_sandbox import DockerTransport, SandboxUnavailable, docker_available
from prover.lean.transport import TransportClosed, TransportTimeout

from doubles.fake_docker import FakeDockerClient

MiB = 1024 * 1024

# Echoes each line, in two writes (two frames for one line); a few words do something else.
ECHO = r"""
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
for raw in sys.stdin.buffer:
    line = raw.rstrip(b"\n")
    if line == b"two":
        out.write(b"one\ntwo\n")  # two lines in one frame
    elif line == b"big":
        out.write(b"x" * 200_000 + b"\n")  # more than one recv() and one frame
    elif line == b"err":
        err.write(b"boom on stderr\n")
        err.flush()
        out.write(b"err done\n")
    elif line == b"silent":
        continue
    elif line == b"exit":
        sys.exit(3)
    else:
        out.write(line[:2])
        out.flush()
        out.write(line[2:] + b"\n")
    out.flush()
"""
ARGV = [sys.executable, "-c", ECHO]

FAR = float("inf")  # no deadline for writes in these tests


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[DockerTransport, FakeDockerClient]]]:
    started: list[DockerTransport] = []

    def make(**fake: object) -> tuple[DockerTransport, FakeDockerClient]:
        client = FakeDockerClient(**fake)  # type: ignore[arg-type]
        transport = DockerTransport(ARGV, client=client, memory_mb=512)
        started.append(transport)
        return transport, client

    yield make
    for transport in started:
        transport.kill()


def soon(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def test_container_is_locked_down(start: Callable[..., tuple[DockerTransport, FakeDockerClient]]):
    _, client = start()
    [kwargs] = client.containers.created
    assert kwargs["image"] == "prover"
    assert [*kwargs["entrypoint"], *kwargs["command"]] == ARGV  # replaces ENTRYPOINT prover
    assert kwargs["network_disabled"] is True
    assert kwargs["mem_limit"] == 512 * MiB
    assert kwargs["memswap_limit"] == kwargs["mem_limit"]
    assert kwargs["pids_limit"] == 256
    assert kwargs["read_only"] is True
    assert kwargs["user"] == "lean"
    assert "/tmp" in kwargs["tmpfs"]
    assert kwargs["stdin_open"] is True and kwargs["tty"] is False
    assert kwargs["auto_remove"] is False
    assert kwargs["environment"] == {}
    assert kwargs["working_dir"] == "/opt/lean/mathlib4"
    container = client.containers.all[0]
    assert container.attach_params == {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}


def test_environment_is_only_what_is_passed() -> None:
    client = FakeDockerClient()
    transport = DockerTransport(ARGV, client=client, environment={"LEAN_PATH": "/x"})
    transport.kill()
    assert client.containers.created[0]["environment"] == {"LEAN_PATH": "/x"}


def test_root_user_is_refused() -> None:
    with pytest.raises(ValueError, match="root"):
        DockerTransport(ARGV, client=FakeDockerClient(), user="root")


@pytest.mark.parametrize("split_bytes", [0, 3], ids=["whole-frames", "split-frames"])
def test_round_trip_line_by_line(
    start: Callable[..., tuple[DockerTransport, FakeDockerClient]], split_bytes: int
) -> None:
    transport, _ = start(split_bytes=split_bytes)
    assert transport.alive()
    for word in (b"hello", b"lean", b"\xce\xbb x"):
        transport.write(word + b"\n", FAR)
        assert transport.read_line(soon()) == word
    transport.write(b"two\n", FAR)
    assert transport.read_line(soon()) == b"one"
    assert transport.read_line(soon()) == b"two"
    if not split_bytes:  # 200 kB in 3-byte pieces with a sleep each would take minutes
        transport.write(b"big\n", FAR)
        assert transport.read_line(soon()) == b"x" * 200_000
    transport.write(b"after\n", FAR)
    assert transport.read_line(soon()) == b"after"


def test_deadline_without_output_times_out(
    start: Callable[..., tuple[DockerTransport, FakeDockerClient]],
) -> None:
    transport, _ = start()
    transport.write(b"silent\n", FAR)
    begun = time.monotonic()
    with pytest.raises(TransportTimeout):
        transport.read_line(begun + 0.3)
    elapsed = time.monotonic() - begun
    assert 0.3 <= elapsed < 1.5
    transport.write(b"still here\n", FAR)  # a timeout does not end the process
    assert transport.read_line(soon()) == b"still here"


def test_kill_twice_removes_the_container(
    start: Callable[..., tuple[DockerTransport, FakeDockerClient]],
) -> None:
    transport, client = start()
    container = client.containers.all[0]
    transport.kill()
    transport.kill()
    assert container.removed
    assert client.containers.removed == [container.id]
    assert container.proc is not None and container.proc.poll() is not None
    assert not transport.alive()
    with pytest.raises(TransportClosed):
        transport.read_line(soon())
    with pytest.raises(TransportClosed):
        transport.write(b"late\n", FAR)
    assert "killed" in transport.diagnostics()


def test_exit_gives_eof_and_exit_status(
    start: Callable[..., tuple[DockerTransport, FakeDockerClient]],
) -> None:
    transport, _ = start()
    transport.write(b"err\n", FAR)
    assert transport.read_line(soon()) == b"err done"
    transport.write(b"exit\n", FAR)
    with pytest.raises(TransportClosed):
        transport.read_line(soon())
    assert not transport.alive()
    diagnostics = transport.diagnostics()
    assert "exit status 3" in diagnostics
    assert "boom on stderr" in diagnostics  # stderr frames were kept apart from stdout
    assert "out of memory" not in diagnostics
    with pytest.raises(TransportClosed):
        transport.write(b"more\n", FAR)


def test_oom_killed_says_out_of_memory(
    start: Callable[..., tuple[DockerTransport, FakeDockerClient]],
) -> None:
    transport, _ = start(oom_killed=True)
    transport.write(b"exit\n", FAR)
    with pytest.raises(TransportClosed):
        transport.read_line(soon())
    assert "out of memory" in transport.diagnostics()
    transport.kill()  # LeanRepl kills first, then asks: the state must survive removal
    assert "out of memory" in transport.diagnostics()


def _no_engine() -> docker.DockerClient:
    raise docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.',\n"
        "FileNotFoundError(2, 'No such file or directory'))"
    )


def _assert_unreachable_message(message: str) -> None:
    assert "Docker is not reachable" in message
    assert "--sandbox bwrap" in message
    assert "\n" not in message


def test_unreachable_engine_is_sandbox_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, why = docker_available(client_factory=_no_engine)
    assert not ok
    _assert_unreachable_message(why)

    monkeypatch.setattr(docker, "from_env", _no_engine)
    with pytest.raises(SandboxUnavailable) as info:
        DockerTransport(ARGV)
    _assert_unreachable_message(str(info.value))
    assert isinstance(info.value, sandbox.SandboxUnavailable)  # handled like other sandboxes

    with pytest.raises(SandboxUnavailable) as info:
        DockerTransport(ARGV, client=FakeDockerClient(reachable=False))
    _assert_unreachable_message(str(info.value))


def test_missing_image_is_sandbox_unavailable() -> None:
    with pytest.raises(SandboxUnavailable, match="docker build -t prover"):
        DockerTransport(ARGV, client=FakeDockerClient(images=()))


def test_docker_available_pings_and_closes() -> None:
    client = FakeDockerClient()
    assert docker_available(client_factory=lambda: client) == (True, "Docker engine reachable")
    assert client.closed
