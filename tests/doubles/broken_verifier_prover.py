#!/usr/bin/env python3
"""`prover ARGS...` with a verifier double whose machinery breaks on cue: the countdown
verifier (what the toy training configs use) raises `MachineryFailure` on its Nth check, N from
$BREAK_ON_CHECK, as the Lean pool does when its REPL or sandbox can no longer run. Every check
before that is the real countdown verifier's. Each check is appended to $CHECK_LOG (one line)
when that is set, so a test can see that nothing was checked after the failure."""

from __future__ import annotations

import os
import sys

from harness.countdown import CountdownVerifier
from prover.errors import MachineryFailure

BREAK_ON = int(os.environ["BREAK_ON_CHECK"])
checked = CountdownVerifier.check
calls = 0


def check_or_break(self: CountdownVerifier, item):  # type: ignore[no-untyped-def]
    global calls
    calls += 1
    log = os.environ.get("CHECK_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{calls}\n")
    if calls >= BREAK_ON:
        raise MachineryFailure(f"the REPL could not start (double: check {calls})")
    return checked(self, item)


CountdownVerifier.check = check_or_break  # type: ignore[method-assign]
sys.argv = ["prover", *sys.argv[1:]]
from prover.cli import main  # noqa: E402

main()
