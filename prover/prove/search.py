"""Best-first search over Lean's tactic states: a step-level model proposes tactics, Lean runs
them in tactic mode, and the most promising open state is expanded next.

The priority of a state reached by the tactics t1..tL is

    (log p(t1) + ... + log p(tL)) / L ** length_exponent

(the root's is 0). This is BFS-Prover's length normalisation (Xin et al., "BFS-Prover:
Scalable Best-First Tree Search for LLM-based Automatic Theorem Proving", arXiv 2502.03438:
cumulative log-probability divided by the path length to a power, so that deep paths are not
crowded out by shallow ones). The default exponent 2.0 is BFS-Prover-V2's released search
setting (repo ByteDance-Seed/BFS-Prover-V2, src/search/run_local_search.sh
`--depth_reward 2.0`; src/search/prover_manager.py puts a node in the queue at
`-cumulative_logprob / depth ** depth_reward`). A tactic's log-probability is its sample's
`Completion.logprob`; a backend that sends none counts as 0 for every tactic, which leaves the
order to the path length and then to first come, first served.

A state whose goals print like a state seen before (`render_goals`) is merged with it: it is
never queued or expanded twice. A path that closes every goal is assembled into a whole proof
and judged by the strict verifier, every rung included; only an accepted one ends the search
as proved. A rejected one is a dead path and the search goes on. Tactic mode alone never
proves anything here.
"""

from __future__ import annotations

import heapq
import itertools
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from prover.errors import MachineryFailure
from prover.lean.extract import plan_check
from prover.lean.tactic_session import TacticSession, TacticState
from prover.lean.tactics import DEFAULT_TACTIC_HEARTBEATS
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import ModelBackend, SamplingParams
from prover.step_prompts import StepPromptFormat, StepState, render_goals

SearchStop = Literal["proved", "exhausted", "expansions", "time", "machinery"]


@dataclass(frozen=True)
class SearchConfig:
    """How one search runs. The defaults are the one place they are set."""

    expansions: int = 100  # states expanded (one model call each) at most
    time_s: float | None = 600.0  # wall clock of one search; BFS-Prover-V2: 600 s a theorem
    tactics_per_state: int = 8  # K: tactics sampled per expansion (one call, n=K)
    length_exponent: float = 2.0  # see the module docstring
    tactic_timeout_s: float = 12.0  # wall clock of one tactic; BFS-Prover-V2: 12 s
    heartbeats: int | None = DEFAULT_TACTIC_HEARTBEATS  # Lean's own bound on one tactic
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256  # a tactic, not a proof
    seed: int | None = None  # independent searches differ by seed (`search_seed`)

    def __post_init__(self) -> None:
        if self.expansions < 1:
            raise ValueError(f"expansions must be at least 1, not {self.expansions}")
        if self.tactics_per_state < 1:
            raise ValueError(f"tactics per state must be at least 1, not {self.tactics_per_state}")
        if self.length_exponent < 0:
            raise ValueError(f"the length exponent must be >= 0, not {self.length_exponent}")
        if self.time_s is not None and self.time_s <= 0:
            raise ValueError(f"the time budget must be positive, not {self.time_s}")
        if self.tactic_timeout_s <= 0:
            raise ValueError(f"the tactic timeout must be positive, not {self.tactic_timeout_s}")


@dataclass(frozen=True)
class SearchProblem:
    """What to prove: as in a CheckItem, without a proof."""

    name: str
    header: str
    formal_statement: str  # ends in `:= by`
    context: str = ""  # Lean text between the header and the statement


@dataclass(frozen=True)
class SearchResult:
    """One search. `proof` (`by` and the tactics) and `verdict` are set only when the strict
    verifier accepted the assembled proof; `stopped` says why the search ended."""

    stopped: SearchStop
    proof: str | None = None
    tactics: tuple[str, ...] = ()  # the proof's path
    verdict: Verdict | None = None
    expansions: int = 0  # states expanded (model calls)
    tactics_sent: int = 0  # tactics run in Lean (banned ones never are)
    tactics_banned: int = 0
    states: int = 0  # distinct open states found, the root included
    merged: int = 0  # tactics that led to a state already found
    rejected: int = 0  # paths that closed every goal in tactic mode, rejected as a whole proof
    time_s: float = 0.0
    missing_logprobs: int = 0  # samples the backend gave no log-probability for
    tokens: int = 0  # tokens the model generated
    detail: str = ""  # why the machinery stopped it

    @property
    def proved(self) -> bool:
        return self.proof is not None


class SearchVerifier(Protocol):
    """What a search needs of the verifier: a local pool (`ReplPool`)."""

    def tactic_session(
        self, header: str, formal_statement: str, *, context: str = ""
    ) -> AbstractContextManager[TacticSession]: ...

    def check(self, item: CheckItem) -> Verdict: ...


def priority(logprob: float, depth: int, exponent: float) -> float:
    """The priority of a state at `depth` tactics from the root whose tactics' log-probabilities
    sum to `logprob`: higher is expanded first."""
    if depth == 0:
        return 0.0
    return logprob / depth**exponent


@dataclass(order=True)
class _Entry:
    key: tuple[float, int]  # (-priority, arrival): the best first, ties first come first served
    state: TacticState = field(compare=False)
    logprob: float = field(compare=False)


class SearchQueue:
    """Open states by priority (`priority`), the highest first; equal ones in arrival order."""

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent
        self._heap: list[_Entry] = []
        self._arrival = itertools.count()

    def push(self, state: TacticState, logprob: float) -> None:
        rank = priority(logprob, state.depth, self.exponent)
        heapq.heappush(self._heap, _Entry((-rank, next(self._arrival)), state, logprob))

    def pop(self) -> tuple[TacticState, float]:
        entry = heapq.heappop(self._heap)
        return entry.state, entry.logprob

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[TacticState]:
        return (e.state for e in sorted(self._heap))


def clean_tactic(text: str | None) -> str | None:
    """A sampled tactic as the search sends and records it: its common indentation removed (a
    multi-line tactic keeps its lines' relative indentation), no blank lines around it."""
    if text is None:
        return None
    lines = [line.rstrip() for line in text.strip("\n").rstrip().splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    cleaned = textwrap.dedent("\n".join(lines))
    # the session records `tactic.strip()`: a first line indented deeper than the rest would
    # be recorded differently from what is sent, so it is not indented either way
    cleaned = cleaned.lstrip(" \t")
    return cleaned or None


def assemble_proof(tactics: tuple[str, ...] | list[str]) -> str:
    """`by`, then each tactic on its own lines, indented by two (a multi-line tactic keeps its
    relative indentation): the proof a whole-proof check judges."""
    lines = ["by"]
    for tactic in tactics:
        lines += ["  " + line if line.strip() else "" for line in tactic.splitlines()]
    return "\n".join(lines)


def reads_as_assembled(item: CheckItem) -> bool:
    """Whether the verifier reads `item`'s proof (an assembled path) as exactly that tactic
    block. Its reading of a model's answer prefers a ```lean block anywhere in the text, a
    comment's included: a tactic holding one in a comment would have the verifier judge, and
    `prove` write back, the comment's text instead of the path tactic mode ran."""
    plan = plan_check(item)
    return not plan.helpers and plan.body == " " + item.proof


def judge_path(
    problem: SearchProblem,
    tactics: tuple[str, ...],
    *,
    verifier: SearchVerifier,
    session: TacticSession,
) -> Verdict | None:
    """The strict verifier's verdict on `tactics` (a path that closed every goal in
    `session`) assembled into a whole proof of `problem`; None when the verifier would not read
    that proof as exactly the path (`reads_as_assembled`), which is then never judged."""
    item = CheckItem(
        problem.name,
        problem.header,
        problem.formal_statement,
        assemble_proof(tactics),
        context=problem.context,
    )
    if not reads_as_assembled(item):
        return None
    # the check runs on a process of the pool: the session's own may be the only one
    with session.lent():
        return verifier.check(item)


def search_seed(seed: int | None, index: int) -> int | None:
    """The seed of the `index`-th independent search from a run's seed."""
    return None if seed is None else seed + index


def expansion_seed(seed: int | None, expansion: int) -> int | None:
    """The sampling seed of one expansion: distinct across the expansions of a search and
    across searches whose seeds differ."""
    return None if seed is None else (seed * 1_000_003 + expansion) % 2**31


def best_first_search(
    problem: SearchProblem,
    *,
    backend: ModelBackend,
    step_format: StepPromptFormat,
    verifier: SearchVerifier,
    config: SearchConfig | None = None,
    on_expansion: Callable[[int], None] | None = None,
) -> SearchResult:
    """One best-first search for `problem` (see the module docstring). `on_expansion` hears the
    number of expansions done after each one.

    Raises MachineryFailure when the machinery cannot go on (never a verdict); the exception
    then carries the search so far as `search_result` (`stopped="machinery"`). A failing
    model backend raises its own error."""
    config = config or SearchConfig()
    run = _Search(problem, backend, step_format, verifier, config, on_expansion)
    try:
        return run.run()
    except MachineryFailure as exc:
        exc.search_result = run.result("machinery", detail=exc.cause)  # type: ignore[attr-defined]
        raise


def partial_result(exc: MachineryFailure) -> SearchResult | None:
    """The search a MachineryFailure stopped, as far as it went (None if it did not come
    from a search)."""
    return getattr(exc, "search_result", None)


class _Search:
    def __init__(
        self,
        problem: SearchProblem,
        backend: ModelBackend,
        step_format: StepPromptFormat,
        verifier: SearchVerifier,
        config: SearchConfig,
        on_expansion: Callable[[int], None] | None,
    ) -> None:
        self.problem = problem
        self.backend = backend
        self.format = step_format
        self.verifier = verifier
        self.config = config
        self.on_expansion = on_expansion
        self.began = time.monotonic()
        self.queue = SearchQueue(config.length_exponent)
        self.seen: dict[str, TacticState] = {}  # goals as printed -> the state first found
        self.judged: set[str] = set()  # assembled proofs already judged (and rejected)
        self.counts = {
            "expansions": 0,
            "tactics_sent": 0,
            "tactics_banned": 0,
            "merged": 0,
            "rejected": 0,
            "missing_logprobs": 0,
            "tokens": 0,
        }
        self.found: tuple[str, tuple[str, ...], Verdict] | None = None

    def result(self, stopped: SearchStop, *, detail: str = "") -> SearchResult:
        proof, tactics, verdict = self.found if self.found else (None, (), None)
        return SearchResult(
            stopped=stopped,
            proof=proof,
            tactics=tactics,
            verdict=verdict,
            states=len(self.seen),
            time_s=round(time.monotonic() - self.began, 4),
            detail=detail,
            **self.counts,
        )

    def remaining(self) -> float | None:
        if self.config.time_s is None:
            return None
        return self.config.time_s - (time.monotonic() - self.began)

    def out_of_time(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def run(self) -> SearchResult:
        problem = self.problem
        with self.verifier.tactic_session(
            problem.header, problem.formal_statement, context=problem.context
        ) as session:
            root = session.root
            self.seen[render_goals(root.goals)] = root
            self.queue.push(root, 0.0)
            while True:
                if not self.queue:
                    return self.result("exhausted")
                if self.counts["expansions"] >= self.config.expansions:
                    return self.result("expansions")
                if self.out_of_time():
                    return self.result("time")
                state, logprob = self.queue.pop()
                stop = self.expand(session, state, logprob)
                if self.on_expansion is not None:
                    self.on_expansion(self.counts["expansions"])
                if stop is not None:
                    return self.result(stop)

    def sample(self, state: TacticState) -> list[tuple[str, float]]:
        """The distinct tactics sampled for `state`, the most likely first."""
        config = self.config
        self.counts["expansions"] += 1
        prompt = self.format.prompt(
            StepState(
                goals=state.goals,
                theorem=self.problem.name,
                statement=self.problem.formal_statement,
                path=state.tactics,
            )
        )
        params = SamplingParams(
            n=config.tactics_per_state,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            seed=expansion_seed(config.seed, self.counts["expansions"]),
            logprobs=True,
        )
        (completions,) = self.backend.generate([prompt], params)
        tactics: dict[str, float] = {}
        for completion in completions:
            self.counts["tokens"] += completion.tokens
            tactic = clean_tactic(self.format.tactic(completion.text))
            if completion.logprob is None:
                self.counts["missing_logprobs"] += 1
            if tactic is None or tactic in tactics:
                continue  # the same tactic twice is run once
            tactics[tactic] = 0.0 if completion.logprob is None else completion.logprob
        return sorted(tactics.items(), key=lambda item: -item[1])

    def expand(
        self, session: TacticSession, state: TacticState, logprob: float
    ) -> SearchStop | None:
        """Run each sampled tactic in `state`; queue the new open states. `proved` once a whole
        proof was accepted, `time` when the budget ran out on the way."""
        for tactic, tactic_logprob in self.sample(state):
            left = self.remaining()
            if left is not None and left <= 0:
                return "time"
            timeout = (
                self.config.tactic_timeout_s
                if left is None
                else min(self.config.tactic_timeout_s, max(left, 0.05))
            )
            step = session.run(state, tactic, timeout=timeout, heartbeats=self.config.heartbeats)
            if step.outcome == "banned":
                self.counts["tactics_banned"] += 1
                continue
            self.counts["tactics_sent"] += 1
            if step.outcome == "failed" or step.state is None:
                continue
            if step.outcome == "proved":
                if self.judge(session, step.state.tactics):
                    return "proved"
                continue
            key = render_goals(step.state.goals)
            if key in self.seen:
                self.counts["merged"] += 1
                continue
            self.seen[key] = step.state
            self.queue.push(step.state, logprob + tactic_logprob)
        return None

    def judge(self, session: TacticSession, tactics: tuple[str, ...]) -> bool:
        """Whether the strict verifier accepts the path as a whole proof."""
        proof = assemble_proof(tactics)
        if proof in self.judged:
            return False
        self.judged.add(proof)
        verdict = judge_path(self.problem, tactics, verifier=self.verifier, session=session)
        if verdict is None or not verdict.accepted:
            self.counts["rejected"] += 1
            return False
        self.found = (proof, tactics, verdict)
        return True
