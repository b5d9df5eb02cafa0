"""Errors a user can fix: printed as one line on stderr, never as a traceback."""


class UsageError(Exception):
    """Bad input: a missing file, an invalid JSONL line, non-UTF-8 text, ... (exit 2)."""
