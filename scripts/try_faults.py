"""Inject the machinery faults users meet and print what `prover` answers, as a table.

Lean runs as the FakeRepl test double (tests/doubles/fake_repl.py, a real subprocess), so this
runs on any machine: `python scripts/try_faults.py` prints one Markdown row per fault (the
command's exit code and its last stderr line, or the verdicts it wrote).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "doubles" / "fake_repl.py"
HEADER = "import Mathlib\n"


def fake(tmp: Path, name: str, rules: list[dict]) -> str:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps({"rules": rules}))
    return shlex.join([sys.executable, str(FAKE), "script", str(path)])


def items(tmp: Path, proofs: list[str]) -> Path:
    path = tmp / f"items-{len(list(tmp.glob('items-*')))}.jsonl"
    rows = [
        {"name": f"t{i}", "header": HEADER, "formal_statement": f"theorem t{i} : 1 = 1 := by",
         "proof": proof}
        for i, proof in enumerate(proofs)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def prover(*args: str, timeout: float = 300) -> tuple[int, str, str, float]:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "prover", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    return done.returncode, lines[-1] if lines else "", done.stdout, time.monotonic() - began


def reasons(stdout: str) -> str:
    out = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return ", ".join(f"{v.get('name')}: {v.get('reason')}" for v in out)


def main() -> None:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        local = ["--sandbox", "none", "--no-replay"]
        three = items(tmp, ["  rfl", "  rfl", "  rfl"])

        def row(fault: str, *args: str, show_verdicts: bool = False) -> None:
            code, last, stdout, took = prover(*args)
            seen = reasons(stdout) if show_verdicts and stdout.strip() else last
            rows.append((fault, f"exit {code} in {took:.1f} s: {seen[:220]}"))

        row("REPL cannot start (`sh -c 'exit 1'`)", "check", "--jsonl", str(three),
            "--repl", "sh -c 'exit 1'", *local)  # fmt: skip
        row("REPL never answers (`sleep 100000`, `--header-timeout 2`)", "check", "--jsonl",
            str(three), "--repl", "sleep 100000", "--header-timeout", "2", *local)  # fmt: skip
        error = {"severity": "error", "pos": {"line": 1, "column": 0}, "endPos": None,
                 "data": "unknown module prefix 'Mathlib'"}  # fmt: skip
        no_mathlib = fake(tmp, "nomathlib", [{"match": "import Mathlib",
                                              "response": {"messages": [error]}}])  # fmt: skip
        row("header does not elaborate (Mathlib missing)", "check", "--jsonl", str(three),
            "--repl", no_mathlib, *local)  # fmt: skip
        row("REPL floods its output (`yes`)", "check", "--jsonl", str(three), "--repl",
            "sh -c 'yes x'", "--header-timeout", "2", *local)  # fmt: skip
        said = "lake: error: no such package 'mathlib'"
        lake = fake(tmp, "lake", [{"match": "import Mathlib", "exit": 1, "stderr": said}])
        row("REPL dies saying why (`lake: error`)", "check", "--jsonl", str(three), "--repl",
            lake, *local)  # fmt: skip
        crash = fake(tmp, "crash", [{"match": "CRASH", "exit": 1}])
        mixed = items(tmp, ["  rfl", "  rfl -- CRASH", "  rfl"])
        row("a proof that crashes Lean (twice)", "check", "--jsonl", str(mixed), "--repl", crash,
            *local, show_verdicts=True)  # fmt: skip
        every = fake(tmp, "every", [{"match": "theorem", "exit": 1}])
        row("Lean crashes on every theorem (canary too)", "check", "--jsonl", str(three),
            "--repl", every, *local)  # fmt: skip
        good = fake(tmp, "good", [])
        row("`check --out /dev/full` (full disk)", "check", "--jsonl", str(three), "--out",
            "/dev/full", "--repl", good, *local)  # fmt: skip
        row("`check --out` = the input", "check", "--jsonl", str(three), "--out", str(three),
            "--repl", good, *local)  # fmt: skip
        row("`--verifier not-a-url`", "check", "--jsonl", str(three), "--verifier", "not-a-url")
        row("`--verifier` unreachable (port 9)", "check", "--jsonl", str(three), "--verifier",
            "http://127.0.0.1:9")  # fmt: skip
        lean_file = tmp / "hang.lean"
        lean_file.write_text(
            "import Mathlib\n\ntheorem a : 1 = 1 := by\n  rfl\n\n"
            "theorem b : 2 = 2 := by\n  rfl -- HANG\n\ntheorem c : 3 = 3 := by\n  rfl\n"
        )
        hang = fake(tmp, "hang", [{"match": "HANG", "sleep_s": 1000}])
        code, last, stdout, took = prover("check", str(lean_file), "--json", "--timeout", "2",
                                          "--repl", hang, *local)  # fmt: skip
        report = json.loads(stdout) if stdout.strip().startswith("{") else {}
        verdicts = ", ".join(f"{t['name']}: {t['reason']}" for t in report.get("theorems", []))
        rows.append(("FILE mode, one theorem hangs (`--timeout 2`)",
                     f"exit {code} in {took:.1f} s: {verdicts}"))  # fmt: skip
        bom = tmp / "bom.lean"
        bom.write_bytes("\ufeffimport Mathlib\n\ntheorem a : 1 = 1 := by\n  rfl\n".encode())
        code, last, stdout, took = prover("check", str(bom), "--json", "--repl", good, *local)
        accepted = json.loads(stdout).get("accepted") if stdout.strip().startswith("{") else None
        rows.append(("`.lean` file starting with a UTF-8 BOM",
                     f"exit {code} in {took:.1f} s: accepted={accepted}"))  # fmt: skip
        bad_suite = tmp / "suite.jsonl"
        bad_suite.write_text(
            json.dumps({"name": "p1", "split": "test", "header": HEADER,
                        "formal_statement": "theorem p1 : 1 = 1 := by"}) + "\n"
            + json.dumps({"name": "p2", "split": "test", "header": HEADER,
                          "formal_statement": "theorem p2 : 1 = 1"}) + "\n"
        )  # fmt: skip
        row("suite row without `:=`", "eval", str(bad_suite), "--n", "1", "--backend",
            "openai", "--model", "m", "--api-base", "http://127.0.0.1:9", "--repl", good,
            *local)  # fmt: skip
        row("`prover serve --port 99999`", "serve", "--port", "99999", "--sandbox", "none",
            "--insecure", "--repl", good)  # fmt: skip
    print("| fault | what the user sees |")
    print("|---|---|")
    for fault, seen in rows:
        print(f"| {fault} | {seen.replace('|', '/')} |")


if __name__ == "__main__":
    main()
