"""`prover prove --search best-first`: fill each `sorry` by best-first searches over tactic
states (search.py), with the same targets, write-back and report as the whole-proof loop.

Per target: up to `attempts` independent searches (each its own seed), one after the other,
until one finds a proof the strict verifier accepts or `budget_s` (all of them together) runs
out.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from prover.errors import MachineryFailure
from prover.lean.extract import plan_check
from prover.lean.verdict import CheckItem, Verdict
from prover.models.base import ModelBackend
from prover.prove.loop import ProveReport, TargetResult, prove_targets, restated
from prover.prove.search import (
    SearchConfig,
    SearchProblem,
    SearchResult,
    SearchVerifier,
    best_first_search,
    partial_result,
    search_seed,
)
from prover.prove.targets import Target, formal_statement
from prover.step_prompts import StepPromptFormat


def search_text(
    text: str,
    *,
    backend: ModelBackend,
    step_format: StepPromptFormat,
    verifier: SearchVerifier,
    attempts: int = 1,
    budget_s: float | None = None,
    config: SearchConfig | None = None,
    on_progress: Callable[[TargetResult], None] | None = None,
) -> ProveReport:
    """Prove every target of `text` by search; `on_progress` hears of each target's start,
    each expansion and its end (`result.done`)."""
    config = config or SearchConfig()

    def prove_one(current: str, header: str, target: Target) -> TargetResult:
        return _search_one(
            current, header, target, backend, step_format, verifier, attempts, budget_s,
            config, on_progress,
        )  # fmt: skip

    return prove_targets(text, prove_one)


def target_problem(text: str, header: str, target: Target) -> SearchProblem:
    """The search problem of one target of `text` (whose header is `header`)."""
    statement = formal_statement(target)
    name = (
        target.local_name
        if target.keyword != "example" and target.local_name
        else f"prover_example_{target.line}"
    )
    return SearchProblem(name, header, statement, context=text[len(header) : target.start])


def _search_one(
    text: str,
    header: str,
    target: Target,
    backend: ModelBackend,
    step_format: StepPromptFormat,
    verifier: SearchVerifier,
    attempts: int,
    budget_s: float | None,
    config: SearchConfig,
    on_progress: Callable[[TargetResult], None] | None,
) -> TargetResult:
    start = time.monotonic()
    result = TargetResult(target)
    problem = target_problem(text, header, target)
    if on_progress is not None:
        on_progress(result)  # started
    for index in range(attempts):
        time_s = config.time_s
        if budget_s is not None:
            left = budget_s - (time.monotonic() - start)
            if left <= 0:
                break
            time_s = left if time_s is None else min(time_s, left)
        searched = dataclasses.replace(config, seed=search_seed(config.seed, index), time_s=time_s)
        before = result.expansions

        def expanded(count: int, before: int = before) -> None:
            result.expansions = result.checked = before + count
            if on_progress is not None:
                on_progress(result)

        result.attempts += 1
        result.rounds = 1
        try:
            found = best_first_search(
                problem,
                backend=backend,
                step_format=step_format,
                verifier=verifier,
                config=searched,
                on_expansion=expanded,
            )
        except MachineryFailure as exc:
            _count(result, partial_result(exc), before)
            raise
        _count(result, found, before)
        if found.proved:
            assert found.proof is not None and found.verdict is not None
            if _accept(result, problem, found.proof, found.verdict):
                break
    result.time_s = round(time.monotonic() - start, 3)
    result.done = True
    if on_progress is not None:
        on_progress(result)
    return result


def _count(result: TargetResult, found: SearchResult | None, before: int) -> None:
    if found is None:
        return
    result.expansions = result.checked = before + found.expansions
    result.tokens += found.tokens
    result.reasons[found.stopped] = result.reasons.get(found.stopped, 0) + 1


def _accept(result: TargetResult, problem: SearchProblem, proof: str, verdict: Verdict) -> bool:
    """Record an accepted proof for write-back, unless it could not go under the file's
    statement (as the whole-proof loop refuses such a proof)."""
    item = CheckItem(
        problem.name, problem.header, problem.formal_statement, proof, context=problem.context
    )
    plan = plan_check(item)
    clash = restated(plan.statement, problem.formal_statement)
    if clash is not None:
        result.verdict = Verdict(verdict.name, False, "banned", detail=clash)
        return False
    result.proved, result.verdict = True, verdict
    result.helpers, result.body = plan.helpers, plan.body
    return True
