"""`prover eval --ray-address`: the model and the verifier as Ray actors.

`RayBackend` and `RayVerifier` have the interfaces of a local backend and verifier, so the eval
loop is the same code with or without a cluster. Each generator actor holds one model replica
(one GPU each when the cluster has GPUs); each verifier actor holds one verifier (a Lean pool
with its own workers, a remote server client, or the Python task) and checks batches.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prover.errors import UsageError
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import Completion, Prompt, SamplingParams


def connect(address: str) -> None:
    """`local` starts a Ray instance on this machine (modules found as here); anything else
    joins that cluster, whose nodes must have this project installed."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray-address needs Ray: pip install 'prover[ray]'") from None
    if ray.is_initialized():
        return
    try:
        if address == "local":
            path = os.pathsep.join(p for p in sys.path if p)
            ray.init(
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as exc:  # a wrong address, no cluster there
        raise UsageError(f"cannot reach Ray at {address}: {' '.join(str(exc).split())}") from None


class _Actor:
    """Builds its object in the actor; a failure to build (no REPL, no model) is kept and
    raised by every call, so the driver sees the user's error, not a dead actor."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.failure: BaseException | None = None
        self.obj: Any = None
        try:
            self.obj = factory()
            if hasattr(self.obj, "__enter__"):
                self.obj.__enter__()
        except Exception as exc:
            self.failure = exc

    def _get(self) -> Any:
        if self.failure is not None:
            raise self.failure
        return self.obj


class _Generator(_Actor):
    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self._get().generate(prompts, params)

    def identity(self) -> tuple[str, str | None]:
        backend = self._get()
        return backend.model, getattr(backend, "revision", None)


class _Verifier(_Actor):
    def learn_version(self, header: str) -> str | None:
        from harness.tasks import learn_lean_version

        return learn_lean_version(self._get(), header)

    def workers(self) -> int:
        return int(getattr(self._get(), "workers", 1) or 1)

    def check(self, item: CheckItem) -> Verdict:
        return self._get().check(item)

    def close(self) -> None:
        if self.obj is not None and hasattr(self.obj, "close"):
            self.obj.close()


def _call(ref: Any) -> Any:
    """ray.get, raising the actor's own exception rather than Ray's wrapper around it."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        raise (cause if isinstance(cause, BaseException) else exc) from None


class RayBackend:
    """A ModelBackend whose `generate` runs on whichever replica is free."""

    def __init__(self, factory: Callable[[], Any], *, replicas: int = 1) -> None:
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= replicas else 0
        actor = ray_remote(_Generator, num_gpus=gpus)
        self._actors = [actor.remote(factory) for _ in range(replicas)]
        self.model, self.revision = _call(self._actors[0].identity.remote())
        self._idle: queue.Queue[Any] = queue.Queue()
        for a in self._actors:
            self._idle.put(a)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:

        actor = self._idle.get()
        try:
            return _call(actor.generate.remote(list(prompts), params))
        finally:
            self._idle.put(actor)

    def close(self) -> None:
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []


class RayVerifier:
    """The verifier interface over verifier actors, each running checks concurrently (as many
    as its verifier's workers); `workers` tells the eval loop how many to keep in flight."""

    def __init__(self, factory: Callable[[], Any], *, actors: int = 1) -> None:
        actor = ray_remote(_Verifier, max_concurrency=64)
        self._actors = [actor.remote(factory) for _ in range(actors)]
        self.workers = sum(_call(a.workers.remote()) for a in self._actors)
        self._turn = itertools.count()

    def learn_version(self, header: str) -> str | None:
        return _call(self._actors[0].learn_version.remote(header))

    def check(self, item: CheckItem) -> Verdict:
        actor = self._actors[next(self._turn) % len(self._actors)]
        return _call(actor.check.remote(item))

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        for item in items:
            yield item, self.check(item)

    def close(self) -> None:
        import ray

        for a in self._actors:
            with contextlib.suppress(Exception):  # an actor already gone has nothing to close
                ray.get(a.close.remote(), timeout=30)
            ray.kill(a)
        self._actors = []

    def __enter__(self) -> RayVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ray_remote(cls: type, **options: Any) -> Any:
    import ray

    return ray.remote(num_cpus=0, **options)(cls)
