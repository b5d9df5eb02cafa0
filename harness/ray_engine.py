"""`prover eval --ray-address`: the model and the verifier as Ray actors.

`RayBackend` and `RayVerifier` have the interfaces of a local backend and verifier, so the eval
loop is the same code with or without a cluster. Each generator actor holds one model replica
(one GPU each when the cluster has GPUs); each verifier actor holds one verifier (a Lean pool
with its own workers, a remote server client, or the Python task) and checks batches.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
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
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as exc:  # a wrong address, no cluster there
        raise UsageError(f"cannot reach Ray at {address}: {' '.join(str(exc).split())}") from None


class _Generator:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self.backend = factory()

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self.backend.generate(prompts, params)

    def identity(self) -> tuple[str, str | None]:
        return self.backend.model, getattr(self.backend, "revision", None)


class _Verifier:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self.verifier = factory()
        if hasattr(self.verifier, "__enter__"):
            self.verifier.__enter__()

    def learn_version(self, header: str) -> str | None:
        from harness.tasks import learn_lean_version

        return learn_lean_version(self.verifier, header)

    def check_batch(self, items: list[CheckItem]) -> list[Verdict]:
        found = {id(item): verdict for item, verdict in self.verifier.check_many(items)}
        return [found[id(item)] for item in items]

    def close(self) -> None:
        if hasattr(self.verifier, "close"):
            self.verifier.close()


class RayBackend:
    """A ModelBackend whose `generate` runs on whichever replica is free."""

    def __init__(self, factory: Callable[[], Any], *, replicas: int = 1) -> None:
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= replicas else 0
        actor = ray.remote(num_cpus=0, num_gpus=gpus)(_Generator)
        self._actors = [actor.remote(factory) for _ in range(replicas)]
        self.model, self.revision = ray.get(self._actors[0].identity.remote())
        self._idle: queue.Queue[Any] = queue.Queue()
        for a in self._actors:
            self._idle.put(a)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        import ray

        actor = self._idle.get()
        try:
            return ray.get(actor.generate.remote(list(prompts), params))
        finally:
            self._idle.put(actor)

    def close(self) -> None:
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []


class RayVerifier:
    """The verifier interface (`check_many`) over verifier actors, a few batches in flight
    per actor; verdicts come back with the caller's own item objects."""

    def __init__(
        self, factory: Callable[[], Any], *, actors: int = 1, batch_size: int = 8
    ) -> None:
        import ray

        actor = ray.remote(num_cpus=0)(_Verifier)
        self._actors = [actor.remote(factory) for _ in range(actors)]
        self.batch_size = batch_size

    def learn_version(self, header: str) -> str | None:
        import ray

        return ray.get(self._actors[0].learn_version.remote(header))

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        import ray

        source = iter(items)
        in_flight: dict[Any, list[CheckItem]] = {}
        turn = 0
        exhausted = False
        while in_flight or not exhausted:
            while not exhausted and len(in_flight) < 2 * len(self._actors):
                batch = list(islice(source, self.batch_size))
                if not batch:
                    exhausted = True
                    break
                actor = self._actors[turn % len(self._actors)]
                turn += 1
                in_flight[actor.check_batch.remote(batch)] = batch
            if not in_flight:
                break
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                batch = in_flight.pop(ref)
                yield from zip(batch, ray.get(ref), strict=True)

    def check(self, item: CheckItem) -> Verdict:
        return next(iter(self.check_many([item])))[1]

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
