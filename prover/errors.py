"""Errors a user can fix, and failures of the machinery: each printed as one line on stderr,
never as a traceback."""


class UsageError(Exception):
    """Bad input: a missing file, an invalid JSONL line, non-UTF-8 text, ... (exit 2)."""


class SandboxUnavailable(Exception):
    """The requested sandbox cannot run here; the message says what to do instead. Here, not
    in `prover.lean.sandbox`, so that every sandbox module can subclass it without importing
    the one that starts them."""


class MachineryFailure(Exception):
    """The verifier's machinery failed, not the model's text: the REPL or its header cannot
    start, the sandbox is missing, the remote verifier is unreachable or answers 5xx, retries
    are spent or the circuit breaker opened. Never a verdict: the command stops (exit 2), stores
    nothing for the check in hand, and `--resume` checks it again."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause
