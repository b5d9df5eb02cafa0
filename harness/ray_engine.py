"""`prover eval --ray-address`: the model and the verifier as Ray actors.

`RayBackend` and `RayVerifier` have the interfaces of a local backend and verifier, so the eval
loop is the same code with or without a cluster. Each generator actor holds one model replica
(one GPU each when the cluster has GPUs); each verifier actor holds one verifier (a Lean pool
with its own workers, a remote server client, or the Python task) and checks batches.

A run of searches (`--search`) needs tactic states, which live in one REPL process: a search
cannot hop between machines, so each verifier actor runs whole searches on its own pool
(`RaySearcher`, the search_run.py `Searcher` of a Ray run), exactly as search_run.py runs them
locally, sampling tactics from the generator actors (`RemoteModel`). Only the finished
`SearchResult` comes back to the driver, which stores it like a local one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prover.errors import UsageError
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import Completion, Prompt, SamplingParams

if TYPE_CHECKING:
    from prover.prove.search import SearchConfig, SearchProblem, SearchResult
    from prover.step_prompts import StepPromptFormat


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
    model: RemoteModel | None = None  # the generators, for searches (`use_model`)

    def learn_version(self, header: str) -> str | None:
        from harness.tasks import learn_lean_version

        return learn_lean_version(self._get(), header)

    def workers(self) -> int:
        return int(getattr(self._get(), "workers", 1) or 1)

    def check(self, item: CheckItem) -> Verdict:
        return self._get().check(item)

    def use_model(self, generators: list[Any], model: str, revision: str | None) -> None:
        """Sample the searches' tactics from `generators` (one proxy for the whole actor, so
        that its searches share the replicas it is not already using)."""
        self.model = RemoteModel(generators, model=model, revision=revision)

    def search(
        self, problem: SearchProblem, step_format: StepPromptFormat, config: SearchConfig
    ) -> tuple[SearchResult, float]:
        """One whole search on this actor's pool, as a local run does it (search_run.py
        `LocalSearcher`): its result, and the seconds it spent sampling."""
        from harness.search_run import LocalSearcher

        pool = self._get()
        if not hasattr(pool, "tactic_session"):  # the CLI refuses it first
            raise UsageError("--search needs a local verifier with a tactic mode")
        if self.model is None:
            raise RuntimeError("a search before use_model: no generators to sample from")
        # the proxy takes concurrent calls: each goes to a free replica or waits for one
        searcher = LocalSearcher(self.model, pool, step_format, shared_backend=True)
        return searcher.search(problem, config), searcher.generate_s

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


class RemoteModel:
    """A ModelBackend over generator actors, usable in any process of the cluster (a verifier
    actor's searches): each call goes to a replica this proxy is not using, or waits for one.
    The replica's Completions come back whole, log-probabilities included."""

    def __init__(self, generators: list[Any], *, model: str, revision: str | None) -> None:
        self.model = model
        self.revision = revision
        self._idle: queue.Queue[Any] = queue.Queue()
        for generator in generators:
            self._idle.put(generator)

    def generate(self, prompts: Iterable[Prompt], params: SamplingParams) -> list[list[Completion]]:
        actor = self._idle.get()
        try:
            return _call(actor.generate.remote(list(prompts), params))
        finally:
            self._idle.put(actor)

    def close(self) -> None:
        pass  # the generators' owner (RayBackend) closes them


class RayBackend:
    """A ModelBackend whose `generate` runs on whichever replica is free."""

    def __init__(self, factory: Callable[[], Any], *, replicas: int = 1) -> None:
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= replicas else 0
        actor = ray_remote(_Generator, num_gpus=gpus)
        self._actors = [actor.remote(factory) for _ in range(replicas)]
        self.model, self.revision = _call(self._actors[0].identity.remote())
        self._remote = RemoteModel(self._actors, model=self.model, revision=self.revision)

    @property
    def generators(self) -> list[Any]:
        """The replicas' actor handles (to sample from another actor: `RemoteModel`)."""
        return list(self._actors)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self._remote.generate(prompts, params)

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
        self.actor_workers = [_call(a.workers.remote()) for a in self._actors]
        self.workers = sum(self.actor_workers)
        self._turn = itertools.count()

    def learn_version(self, header: str) -> str | None:
        return _call(self._actors[0].learn_version.remote(header))

    def check(self, item: CheckItem) -> Verdict:
        actor = self._actors[next(self._turn) % len(self._actors)]
        return _call(actor.check.remote(item))

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        for item in items:
            yield item, self.check(item)

    def searcher(self, backend: RayBackend, step_format: StepPromptFormat) -> RaySearcher:
        """Searches on these actors, sampling from `backend`'s replicas."""
        return RaySearcher(self, backend, step_format)

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


class RaySearcher:
    """search_run.py's `Searcher` on verifier actors: each search runs whole on one actor's
    pool, and each actor runs at most as many at once as its pool has workers (a search pins
    a process), so a search's time budget is never spent waiting for a process."""

    def __init__(
        self, verifier: RayVerifier, backend: RayBackend, step_format: StepPromptFormat
    ) -> None:
        self.step_format = step_format
        self.generate_s = 0.0
        self._count = threading.Lock()
        self._slots: queue.Queue[Any] = queue.Queue()
        for actor, workers in zip(verifier._actors, verifier.actor_workers, strict=True):
            _call(actor.use_model.remote(backend.generators, backend.model, backend.revision))
            for _ in range(workers):
                self._slots.put(actor)

    def search(self, problem: SearchProblem, config: SearchConfig) -> SearchResult:
        actor = self._slots.get()
        try:
            result, generate_s = _call(actor.search.remote(problem, self.step_format, config))
        finally:
            self._slots.put(actor)
        with self._count:
            self.generate_s += generate_s
        return result


def ray_remote(cls: type, **options: Any) -> Any:
    import ray

    return ray.remote(num_cpus=0, **options)(cls)
