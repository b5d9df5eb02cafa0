"""Where a REPL process runs: bubblewrap, a Docker container, or a plain subprocess.

Each choice yields a `transport_factory`: a function that starts one REPL process and returns
its `Transport`. `auto` picks bwrap when a probe shows it works, and refuses otherwise unless
this process already runs inside the project's container (where the container is the sandbox).
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prover.errors import SandboxUnavailable  # raised here; callers import it from here too
from prover.lean.transport import FileExchange, SubprocessTransport, Transport

SANDBOXES = ("auto", "bwrap", "docker", "none")

# The REPL as the project's image builds it (see Dockerfile); PROVER_REPL overrides.
DEFAULT_REPL = "lake env /opt/lean/repl/.lake/build/bin/repl"
DEFAULT_REPL_CWD = "/opt/lean/mathlib4"
IN_CONTAINER_VAR = "PROVER_IN_CONTAINER"
_PR_SET_PDEATHSIG = 1


class ReplNotFound(Exception):
    """No REPL program to start; the message says how to get one."""


@dataclass(frozen=True)
class ReplCommand:
    argv: tuple[str, ...]
    cwd: str | None = None

    @classmethod
    def resolve(cls, repl: str | None = None, cwd: str | None = None) -> ReplCommand:
        """`--repl` first, then PROVER_REPL / PROVER_REPL_CWD, then the image's REPL."""
        text = repl or os.environ.get("PROVER_REPL") or DEFAULT_REPL
        argv = tuple(shlex.split(text))
        if not argv:
            raise ReplNotFound("the REPL command is empty")
        if cwd is None:
            cwd = os.environ.get("PROVER_REPL_CWD")
            if cwd is None and text == DEFAULT_REPL:
                cwd = DEFAULT_REPL_CWD
        return cls(argv, cwd)

    def check_exists(self) -> None:
        """Fail early, with a one-line fix, when the program or its directory is missing."""
        hint = (
            "run inside the project's Docker image (see README), or point --repl / PROVER_REPL "
            "at a Lean REPL command, e.g. --repl 'lake env /path/to/repl/.lake/build/bin/repl'"
        )
        if self.cwd is not None and not Path(self.cwd).is_dir():
            raise ReplNotFound(f"no Lean REPL found: directory {self.cwd} does not exist; {hint}")
        program = self.argv[0]
        found = Path(self.cwd or ".", program).exists() if "/" in program else shutil.which(program)
        if not found:
            raise ReplNotFound(f"no Lean REPL found: `{program}` is not installed; {hint}")


def extra_ro_paths() -> list[str]:
    """Read-only binds a user adds for bwrap (a REPL or toolchain outside the usual places)."""
    return [p for p in os.environ.get("PROVER_SANDBOX_RO_PATHS", "").split(":") if p]


@dataclass
class SandboxConfig:
    kind: str = "auto"
    memory_mb: int = 12288  # address-space cap per REPL (Mathlib needs about 9 GB of it)
    ro_paths: list[str] = field(default_factory=list)  # extra read-only binds for bwrap
    docker_image: str = "prover"


@functools.lru_cache(maxsize=1)
def bwrap_probe() -> tuple[bool, str]:
    """Whether bubblewrap can create the namespaces we need on this machine."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bubblewrap (bwrap) is not installed"
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap probe failed: {exc}"
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip().splitlines()
        return False, f"bwrap cannot create namespaces here ({err[-1] if err else 'no output'})"
    return True, "ok"


def resolve_kind(kind: str) -> str:
    """The sandbox to use for `kind`; raises SandboxUnavailable with a one-line explanation."""
    if kind not in SANDBOXES:
        raise SandboxUnavailable(f"unknown sandbox {kind!r}; choose one of {', '.join(SANDBOXES)}")
    if kind == "bwrap":
        ok, why = bwrap_probe()
        if not ok:
            raise SandboxUnavailable(f"--sandbox bwrap: {why}")
        return kind
    if kind == "docker":
        try:
            from prover.lean.docker_sandbox import docker_available
        except ImportError:
            raise SandboxUnavailable(
                "--sandbox docker needs the docker SDK: pip install 'prover[docker]'"
            ) from None
        ok, why = docker_available()
        if not ok:
            raise SandboxUnavailable(f"--sandbox docker: {why}")
        return kind
    if kind != "auto":
        return kind
    ok, why = bwrap_probe()
    if ok:
        return "bwrap"
    if os.environ.get(IN_CONTAINER_VAR):
        return "none"  # the project's container is itself the sandbox
    raise SandboxUnavailable(
        f"no sandbox for untrusted proofs: {why}; install bubblewrap, use --sandbox docker, "
        "or --sandbox none for trusted input only"
    )


def _child_setup(memory_mb: int) -> Callable[[], None]:
    """What runs in the child between fork and exec: the address-space cap, and death with
    the pool's launcher thread, so a killed `prover` leaves no REPL behind."""
    limit = memory_mb * 1024 * 1024
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        prctl = None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return apply


def sandbox_environment(command: ReplCommand | None = None) -> dict[str, str]:
    """The cleared environment a sandboxed REPL gets: enough for elan/lake, nothing else."""
    path = ["/usr/local/bin", "/usr/bin", "/bin"]
    program = shutil.which(command.argv[0]) if command and "/" not in command.argv[0] else None
    if program:
        path.insert(0, str(Path(program).parent))
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    elan_home = os.environ.get("ELAN_HOME") or str(Path.home() / ".elan")
    if Path(elan_home).is_dir():
        env["ELAN_HOME"] = elan_home
        path.insert(0, str(Path(elan_home) / "bin"))
    env["PATH"] = ":".join(path)
    return env


def bwrap_argv(
    command: ReplCommand, scratch: Path, ro_paths: Sequence[str], env: dict[str, str]
) -> list[str]:
    """bwrap arguments: no network, own pid namespace, read-only system and toolchain,
    the scratch dir as the only writable place (mounted as a private /tmp)."""
    argv = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-all",  # network, pid, ipc, uts, cgroup, user
        "--die-with-parent",
        "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        "--ro-bind-try", "/etc", "/etc",
        "--proc", "/proc",
        "--dev", "/dev",
    ]  # fmt: skip
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            argv += ["--ro-bind", top, top]
    binds: list[str] = []
    if "ELAN_HOME" in env:
        binds.append(env["ELAN_HOME"])
    if command.cwd:
        binds.append(command.cwd)
    binds += [a for a in command.argv if a.startswith("/") and Path(a).exists()]
    program = shutil.which(command.argv[0]) if "/" not in command.argv[0] else None
    if program:  # found on the host PATH: the same program must exist inside
        binds.append(str(Path(program).parent))
    binds += list(ro_paths)
    # The private /tmp first, so that paths the command names under /tmp can be bound over it.
    argv += ["--bind", str(scratch), "/tmp"]
    for path in dict.fromkeys(os.path.abspath(b) for b in binds):
        if path != "/":  # never expose the whole host root
            argv += ["--ro-bind", path, path]
    argv += ["--remount-ro", "/"]  # the sandbox's own root tmpfs is not a place to write either
    if command.cwd:
        argv += ["--chdir", command.cwd]
    else:
        argv += ["--chdir", "/tmp"]
    return [*argv, "--", *command.argv]


def transport_factory(
    kind: str, command: ReplCommand, config: SandboxConfig, scratch_root: Path | None = None
) -> Callable[[], Transport]:
    """A function that starts one REPL process in sandbox `kind` (already resolved)."""
    if kind == "docker":
        from prover.lean.docker_sandbox import DockerTransport

        def start_docker() -> Transport:
            exchange = Path(tempfile.mkdtemp(prefix="prover-exchange-", dir=scratch_root))
            exchange.chmod(0o777)  # the container's user is not this one
            try:
                return DockerTransport(
                    list(command.argv),
                    image=config.docker_image,
                    memory_mb=config.memory_mb,
                    workdir=command.cwd or DEFAULT_REPL_CWD,
                    exchange_dir=exchange,
                )
            except BaseException:
                shutil.rmtree(exchange, ignore_errors=True)
                raise

        return start_docker

    def start_local() -> Transport:
        scratch = Path(tempfile.mkdtemp(prefix="prover-repl-", dir=scratch_root))
        if kind == "bwrap":
            env = sandbox_environment(command)
            argv = bwrap_argv(command, scratch, config.ro_paths, env)
            cwd = None
            exchange = FileExchange(scratch, "/tmp")  # the scratch dir is the sandbox's /tmp
        else:
            env, argv, cwd = None, list(command.argv), command.cwd
            exchange = FileExchange(scratch, str(scratch))
        transport = SubprocessTransport(
            argv,
            cwd=cwd,
            env=env,
            # stderr lives beside the scratch dir, out of the sandbox's reach.
            stderr_path=scratch.with_suffix(".err"),
            preexec_fn=_child_setup(config.memory_mb),
            cleanup=[scratch, scratch.with_suffix(".err")],
            exchange=exchange,
        )
        return transport

    return start_local
