"""A check as one self-contained Lean snippet, for a Kimina-compatible server.

A remote server (another `prover serve`, or a Kimina Lean Server fleet) runs a whole file per
snippet: its leading imports once per process (cached), the rest as one command. The snippet
carries everything the local pool sends as separate commands (the reference statement, the
model's code, the final statement and axioms check), so the verdict is judged here, by the
same rungs, from the one answer.
"""

from __future__ import annotations

from typing import Any

from prover.lean.acceptance import axioms_reason, elaboration_reason, parse_axioms
from prover.lean.commands import (
    NOT_THE_STATEMENT,
    lean_name,
    reference_command,
    reference_name,
    statement_check_command,
)
from prover.lean.extract import CheckPlan
from prover.lean.protocol import CommandResponse, Message, ProtocolError, parse_response
from prover.lean.source import open_namespace
from prover.lean.verdict import CheckItem, Verdict

KIMINA_TIMEOUT = "Lean process timed out"


# After a check's context: everything Lean says up to this line is about the context, not the
# candidate (the local pool elaborates the context as a command of its own).
CONTEXT_END = '#check ("prover: the candidate starts here" : String)'


def remote_snippet(item: CheckItem, plan: CheckPlan) -> str:
    ref_name = reference_name(item.context + item.formal_statement)
    header = item.header if item.header.endswith("\n") or not item.header else item.header + "\n"
    context = item.context.rstrip("\n") + "\n\n" + CONTEXT_END + "\n\n" if item.context else ""
    namespace = open_namespace(item.context) if item.context else ""
    name = f"{namespace}.{plan.name}" if namespace else plan.name
    return (
        header
        + context
        + reference_command(item.formal_statement, ref_name)
        + "\n\n"
        + plan.code.rstrip("\n")
        + "\n\n"
        + statement_check_command(name, ref_name)
    )


def replay_hint(item: CheckItem, plan: CheckPlan, snippet: dict[str, Any]) -> dict[str, Any]:
    """`snippet` with what a `prover serve` needs to judge it again after its kernel replay
    (fields Kimina ignores). For a check with a context, as in the local pool, the statement
    cannot be elaborated again after replay: the theorem is checked there against the
    reference axiom the snippet declares (`replay_reference`, which older servers ignore)."""
    if item.context:
        namespace = open_namespace(item.context)
        name = f"{namespace}.{plan.name}" if namespace else plan.name
        reference = reference_name(item.context + item.formal_statement)
        return {**snippet, "replay_reference": {"theorem": name, "reference": reference}}
    return {**snippet, "replay": {"statement": item.formal_statement, "theorem": plan.name}}


def judge_remote(
    item: CheckItem,
    plan: CheckPlan,
    result: dict[str, Any],
    *,
    allow_native: bool,
) -> Verdict:
    """The verdict for one `/api/check` result: `{"id", "time", "error", "response"}`."""

    def verdict(reason: str, **fields: Any) -> Verdict:
        return Verdict(
            item.name,
            reason == "ok",
            reason,  # type: ignore[arg-type]
            statement_rewritten=plan.statement_rewritten,
            time_s=float(result.get("time") or 0.0),
            **fields,
        )

    error = result.get("error")
    raw = result.get("response")
    if result.get("replay_error") and not error:  # `prover serve`'s kernel replay rejected it
        return verdict("replay", detail=str(result["replay_error"]).splitlines()[0])
    if error:
        if "timed out" in str(error).lower():
            return verdict("timeout", detail=str(error))
        return verdict("crash", detail=f"verifier: {error}")
    if not isinstance(raw, dict):
        return verdict("crash", detail="verifier returned no REPL answer")
    raw = {k: v for k, v in raw.items() if k != "time"}
    if "message" in raw and "messages" not in raw and "env" not in raw:
        return verdict("crash", detail=f"REPL refused the snippet: {raw['message']}")
    try:
        response = parse_response(raw or {"env": None})
    except ProtocolError as exc:
        return verdict("crash", detail=f"verifier returned garbage: {exc}")
    if item.context and isinstance(response, CommandResponse):
        response = _after_context(response)
        if response is None:
            return verdict("crash", detail="verifier answer lacks the context marker")
    if isinstance(response, CommandResponse) and (mismatch := _statement_mismatch(response, plan)):
        messages = [
            m.to_json()
            for m in response.messages
            if m is not mismatch and not _is_axioms_answer(m.data)
        ]
        first = mismatch.data.splitlines()[0] if mismatch.data else ""
        return verdict("error", messages=messages, detail=f"{NOT_THE_STATEMENT} ({first})")
    messages = [m.to_json() for m in getattr(response, "messages", ())]
    reason = elaboration_reason(response)  # type: ignore[arg-type]
    if reason != "ok":
        errors = [m["data"] for m in messages if m["severity"] == "error"]
        return verdict(
            reason, messages=messages, detail=errors[0].splitlines()[0] if errors else ""
        )
    reported = parse_axioms(response.messages)  # type: ignore[union-attr]
    axioms = reported.get(plan.name)
    if axioms is None and item.context:  # printed with the namespace the context left open
        axioms = next((a for n, a in reported.items() if n.endswith("." + plan.name)), None)
    if axioms is None:
        return verdict("error", messages=messages, detail="no `#print axioms` answer")
    # the axioms answer is ours, not the model's: keep the messages the proof produced
    messages = [
        m
        for m in messages
        if "depends on axioms" not in m["data"] and "does not depend on any axioms" not in m["data"]
    ]
    axioms = sorted(axioms)
    reason = axioms_reason(axioms, allow_native=allow_native)
    replayed = result.get("replayed") is True  # a Kimina server never says so
    if reason == "ok" and replayed:
        again = sorted(str(a) for a in result.get("replay_axioms") or [])
        if axioms_reason(again, allow_native=allow_native) != "ok":
            return verdict(
                "replay",
                messages=messages,
                axioms=again,
                detail=f"after replay the proof rests on axioms [{', '.join(again)}]",
            )
        axioms = again
    return verdict(reason, axioms=axioms, messages=messages, replayed=replayed and reason == "ok")


def _statement_mismatch(response: CommandResponse, plan: CheckPlan) -> Message | None:
    """The statement check's error when it is the snippet's only one (the proof itself
    elaborated): an error on the line above the `#print axioms` answer (the check's `example`),
    or one naming the constant it looks for."""
    errors = response.errors
    axioms_at = [
        m.pos.line
        for m in response.messages
        if m.severity == "info" and m.pos is not None and _is_axioms_answer(m.data)
    ]
    wanted = f"_root_.{lean_name(plan.name)}"
    ours = [
        m for m in errors if (m.pos is not None and m.pos.line + 1 in axioms_at) or wanted in m.data
    ]
    return ours[0] if ours and len(ours) == len(errors) else None


def _is_axioms_answer(text: str) -> bool:
    return "depends on axioms" in text or "does not depend on any axioms" in text


def _after_context(response: CommandResponse) -> CommandResponse | None:
    """What Lean said after the context marker (the context's own messages dropped)."""
    marker = next(
        (m for m in response.messages if "prover: the candidate starts here" in m.data and m.pos),
        None,
    )
    if marker is None or marker.pos is None:
        return None
    line = marker.pos.line
    return CommandResponse(
        response.env,
        tuple(m for m in response.messages if m.pos is not None and m.pos.line > line),
        tuple(s for s in response.sorries if s.pos is not None and s.pos.line > line),
        response.raw,
    )
