"""The prove loop: for each `sorry`, sample candidates, check them, keep the first accepted.

Per target: up to `rounds` rounds of `attempts` samples (or until `budget_s` runs out); each
round's candidates are checked in parallel, the first accepted one wins. With `feedback`, a
round after a failed one shows the model its best failed attempt and Lean's errors (the
self-correction idea of Goedel-Prover-V2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from prover.errors import MachineryFailure
from prover.lean.extract import benchmark_statement, plan_check, statement_key
from prover.lean.source import declarations, top_level_commands
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import ModelBackend, SamplingParams
from prover.prompts import Problem, PromptFormat
from prover.prove.targets import Target, find_targets, formal_statement, write_back


class Checker(Protocol):
    def check_many(self, items: list[CheckItem]) -> object: ...


@dataclass
class TargetResult:
    target: Target
    proved: bool = False
    attempts: int = 0
    rounds: int = 0
    time_s: float = 0.0
    tokens: int = 0
    verdict: Verdict | None = None  # the accepted one, or the best failed one
    helpers: str = ""
    body: str = ""
    reasons: dict[str, int] = field(default_factory=dict)
    checked: int = 0  # candidates judged so far (with --search: states expanded)
    expansions: int = 0  # states expanded, all searches together (--search)
    done: bool = False


@dataclass
class ProveReport:
    text: str  # the file with every accepted proof written in
    results: list[TargetResult]
    error: str | None = None  # why it stopped early (the model failed); proofs found are kept

    @property
    def all_proved(self) -> bool:
        return all(r.proved for r in self.results)


# Rank failures for the feedback round: an attempt Lean understood but found wrong is the
# most useful to correct; one that never reached Lean the least.
_FEEDBACK_RANK = {"error": 0, "sorry": 1, "timeout": 2, "native": 3, "axiom": 3}


def prove_text(
    text: str,
    *,
    backend: ModelBackend,
    prompt_format: PromptFormat,
    verifier: Checker,
    attempts: int = 8,
    rounds: int = 1,
    budget_s: float | None = None,
    params: SamplingParams | None = None,
    feedback: bool = False,
    on_progress: Callable[[TargetResult], None] | None = None,
) -> ProveReport:
    """Prove every target of `text`; `on_progress` hears of each target's start, each
    verdict and its end (`result.done`)."""
    params = params or SamplingParams()

    def prove_one(current: str, header: str, target: Target) -> TargetResult:
        return _prove_one(
            current, header, target, backend, prompt_format, verifier, attempts, rounds,
            budget_s, params, feedback, on_progress,
        )  # fmt: skip

    return prove_targets(text, prove_one)


def prove_targets(text: str, prove_one: Callable[[str, str, Target], TargetResult]) -> ProveReport:
    """Prove every target of `text` in file order with `prove_one(current text, header,
    target)`, writing each accepted proof in before the next target is tried. Stops at the
    first failure of the model or the machinery, keeping the proofs found."""
    results: list[TargetResult] = []
    error = None
    current = text
    unproved = 0  # targets left unproved so far: they stay targets in `current`
    while True:
        # each target is proved against the file with the earlier proofs written in, so
        # proofs that are accepted one by one are also accepted together
        header, targets = find_targets(current)
        if unproved >= len(targets):
            break
        target = targets[unproved]
        try:
            result = prove_one(current, header, target)
        except KeyboardInterrupt:
            error = "interrupted"
            break
        except MachineryFailure as exc:  # not a verdict on this theorem's proofs
            error = f"{target.display}: verifier machinery failed (not a verdict): {exc}"
            break
        except Exception as exc:  # the model or the verifier failed: keep what was proved
            error = f"{target.display}: {exc}"
            break
        results.append(result)
        if result.proved:
            current = write_back(current, {unproved: (result.helpers, result.body)}, targets)
        else:
            unproved += 1
    _, left = find_targets(current)
    results += [TargetResult(t) for t in left[unproved:]] if error else []
    return ProveReport(current, results, error)


def _prove_one(
    text: str,
    header: str,
    target: Target,
    backend: ModelBackend,
    prompt_format: PromptFormat,
    verifier: Checker,
    attempts: int,
    rounds: int,
    budget_s: float | None,
    params: SamplingParams,
    feedback: bool,
    on_progress: Callable[[TargetResult], None] | None,
) -> TargetResult:
    start = time.monotonic()
    result = TargetResult(target)
    statement = formal_statement(target)
    context = text[len(header) : target.start]
    name = statement.split()[1]
    problem = Problem(
        name=name, header=header, formal_statement=statement, informal_prefix=target.doc
    )
    best: tuple[int, str, Verdict] | None = None  # (rank, attempt text, verdict)
    if on_progress is not None:
        on_progress(result)  # started
    for round_no in range(rounds):
        if budget_s is not None and time.monotonic() - start >= budget_s:
            break
        result.rounds = round_no + 1
        if feedback and best is not None:
            errors = [m["data"] for m in best[2].messages if m.get("severity") == "error"]
            prompt = prompt_format.build_feedback(problem, best[1], errors or [best[2].detail])
        else:
            prompt = prompt_format.build(problem)
        seed = None if params.seed is None else params.seed + round_no
        sampling = SamplingParams(
            attempts, params.temperature, params.top_p, params.max_new_tokens, seed
        )
        (completions,) = backend.generate([prompt], sampling)
        items = []
        for completion in completions:
            result.tokens += completion.tokens
            proof = prompt_format.proof_text(problem, completion.text)
            items.append(CheckItem(name, header, statement, proof, context=context))
        result.attempts += len(items)
        winner = None
        for item, verdict in verifier.check_many(items):  # type: ignore[attr-defined]
            if verdict.accepted:
                plan = plan_check(item)
                clash = helper_clash(plan.helpers, text) or restated(plan.statement, statement)
                if clash is not None:  # accepted here, but it would not compile in the file
                    verdict = Verdict(verdict.name, False, "banned", detail=clash)
            result.reasons[verdict.reason] = result.reasons.get(verdict.reason, 0) + 1
            result.checked += 1
            if on_progress is not None:
                on_progress(result)
            if verdict.accepted:
                winner = (item, verdict)
                break  # the first accepted proof is enough
            rank = _FEEDBACK_RANK.get(verdict.reason, 9)
            if best is None or rank <= best[0]:  # the latest of the most useful failures
                best = (rank, item.proof, verdict)
        if winner is not None:
            plan = plan_check(winner[0])
            result.proved, result.verdict = True, winner[1]
            result.helpers, result.body = plan.helpers, plan.body
            break
        if best is not None:
            result.verdict = best[2]
    result.time_s = round(time.monotonic() - start, 3)
    result.done = True
    if on_progress is not None:
        on_progress(result)
    return result


def restated(sent: str, statement: str) -> str | None:
    """Why a proof checked under the statement `sent` cannot be written under the file's
    `statement`, or None. Only the body is written back: a proof whose statement differs from
    the file's in anything but layout (renamed binders, say) may not compile under it."""
    if statement_key(sent) == statement_key(benchmark_statement(statement)):
        return None
    return "the proof restates the theorem differently: its body cannot go under the file's"


_HELPER_KEYWORDS = frozenset({"theorem", "lemma", "def", "abbrev", "structure", "inductive"})


def helper_clash(helpers: str, text: str) -> str | None:
    """Why the proof's helpers cannot be written into the file, or None: a name the file
    already declares (above or below the target), or a command that would change how the
    rest of the file elaborates (`open`, `set_option`, `attribute`, ...), which no check saw."""
    if not helpers.strip():
        return None
    for command in top_level_commands(helpers):
        if command.keyword not in _HELPER_KEYWORDS and command.in_prefix_end < 0:
            return f"helper command `{command.keyword}` would change the rest of the file"
    taken = set()
    for decl in declarations(text):
        for name in (decl.name, decl.local_name):
            if name:
                taken.add(name.rsplit(".", 1)[-1])
    for decl in declarations(helpers):
        short = (decl.local_name or "").rsplit(".", 1)[-1]
        if short and short in taken:
            return f"helper `{short}` clashes with a declaration of the file"
    return None
