"""Reading a `.lean` file a user named: one-line errors for what Lean could never read."""

from __future__ import annotations

from pathlib import Path

from prover.errors import UsageError


def read_lean_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a .lean file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        # utf-8-sig: a leading byte order mark is an encoding signature, not Lean text
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    nul = text.find("\0")
    if nul >= 0:  # never Lean source; tools on the way could cut the text there
        raise UsageError(f"{path}: holds a NUL character (line {text.count(chr(10), 0, nul) + 1})")
    return text

