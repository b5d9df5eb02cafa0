#!/usr/bin/env python3
"""FakeRepl: a test double of the Lean REPL process, for machines where Lean cannot run.

It reads stdin exactly as the real REPL does (the REPL's protocol, as leanprover-community/repl's
source and its test transcripts in tests/data/repl-transcripts show it):
lines up to a blank one, each trimmed at its end, concatenated with no separator; a second
blank line in a row is an (empty) request that fails to parse and kills the process; bad JSON
kills it too; a request starting with `#` or `--` is skipped without an answer; end of input
ends the process normally. Answers are pretty-printed over several lines, then a blank line.

Modes (stdlib only, so it also runs inside bubblewrap):
  fake_repl.py replay IN OUT      replay a recorded transcript (commands and tactic-mode
                                  requests alike): each request must equal the recorded one;
                                  the recorded answer is printed verbatim.
  fake_repl.py script RULES.json  scripted Lean: environments are counted like the REPL does,
                                  `#print axioms NAME` and `#eval Lean.versionString` are
                                  answered, other commands by the first matching rule, tactics
                                  by the tactic table ("tactic_graph", below).
Every request is appended to $FAKE_REPL_LOG (one JSON line each) when that is set, and to
$FAKE_REPL_PID_LOG as {"pid": PID, "request": {...}} (which process got it) when that is set.

Tactic table ("tactic_graph" in RULES.json): scripted tactic mode over a graph of states.
  {"tactic_graph": {
     "states": {"s0": ["⊢ P ∧ Q"], "s1": ["⊢ P", "⊢ Q"], ...},   name -> goals (one text each);
                                                      "proved" is built in: no goal left
     "root": "s0",                                    the state a `... := by sorry` command's
                                                      sorry opens (default: the first state)
     "roots": [{"match": "theorem t2", "state": "s5"}],   per-command roots (first match)
     "edges": {"s0": {"constructor": "s1", ...},      tactic text -> what it does in that state
               "*": {...}},                           ... in any state (after the state's own)
     "proof_status": true}}                           false: answer like the v4.9 REPL, with no
                                                      `proofStatus` field
  Only with "tactic_graph" does a command ending in `:= by sorry` answer `sorries` with a proof
  state (and the sorry warning), as the REPL does. Proof state ids are counted like the REPL's:
  every sorry and every tactic answer (failing ones too) takes the next id; an unknown id
  answers `{"message": "Unknown proof state."}`. A tactic sent as `set_option maxHeartbeats N
  in TACTIC` (one line, or TACTIC on the following lines, indented) is looked up as TACTIC
  with a heartbeat limit of N (Lean's default 200000 otherwise). A tactic the table does not
  know answers `{"message": "Lean error:\n<input>:1:1: unknown tactic"}` (unknown_tactic).
  An edge is a state name, or an object:
    {"to": "s1"}                  the new state: `goals` of s1 and `proofStatus`
                                  "Completed" (no goal) or "Incomplete: open goals remain";
                                  "status": "..." replaces that proofStatus text
    {"error": "text"}             a new state with that error message, `goals: []` and
                                  "Incomplete: contains sorry" (invalid_tactic)
    {"lean_error": "text"}        `{"message": "Lean error:\ntext"}` (self_proof_check)
    {"heartbeats": H, "to": ...}  needs H heartbeats: past the limit, the answer is Lean's
                                  `Lean error` "(deterministic) timeout ... maximum number of
                                  heartbeats (N) has been reached" instead
    "exit", "exit_once", "sleep_s", "garbage", "stderr"   as in command rules: crash, crash
                                  once, hang, print non-JSON, write to stderr
    "exit_if": PATH               with "exit": crash only while PATH exists (a test decides
                                  when a tactic that worked once starts crashing)
    "neuter_process": true        stands for meta code that changed the process itself (a
                                  global hook, not the proof's environment): from then on the
                                  verifier's statement check passes for every command in this
                                  process, as with "neuter_check"; a replay process is not
                                  touched

Rules file: {"version": "4.24.0", "header_delay_s": 0, "rules": [{"match": "substring",
  "exact": false,
  "response": {...without env...}, "axioms": [...], "sleep_s": 1e9, "exit": 3,
  "alloc_mb": 500, "garbage": true, "stderr": "text", "exit_once": FLAG_PATH (with "exit"),
  "exit_if": PATH (with "exit": crash only while PATH exists),
  "probe": {"connect": [host, port], "write": [paths]}}]}
`axioms_by_name` (or else `axioms`) of the rule whose match is in the command that declared
NAME answer `#print axioms NAME` (one line each); otherwise the standard three, and for a
theorem or `def` whose text runs `native_decide` `Lean.ofReduceBool` too, as Lean does. The
verifier's reference statement (an axiom named prover_reference_...) is answered by rules marked
`"reference": true` only; `"statement_mismatch": true` makes the statement the command declares
differ from the reference, as helpers that change its meaning would in real Lean.

Pickles (scripted: no recording of a failing replay exists). `{"pickleTo": PATH, "env": N}`
writes a small JSON file at PATH recording environment N: the commands it holds and what each
name they declared means (statement, axioms); it answers `{"env": N}` as the REPL does.
`{"unpickleEnvFrom": PATH}` reads it back and answers `{"env": M}`; in M those names are known
again, so the statement check and `#print axioms NAME` work there as in the original. Two rule
keys script the replay, for the rule matching a command the pickled environment holds:
  "replay_error": "text"    the kernel rejects that command's declarations on replay. As the
                            real REPL (REPL/Main.lean, `unpickleCommandSnapshot` catches
                            nothing), the process dies: `uncaught exception: text` on stderr,
                            exit status 1. An unreadable pickle does the same.
  "replay_axioms": [...]    what `#print axioms` reports for its names in the replayed
                            environment (the original answer lied, e.g. for an unchecked
                            declaration that a replay turns into something else).
And one for the original process: "tamper_reference": true makes the command's statement
differ from the reference's (as "statement_mismatch") while also changing every reference
constant alike, as meta code rewriting the environment would: the check in that process
passes, a fresh reference elaborated after replay does not match. And "neuter_check": true
makes the command's statement differ from the reference's (as "statement_mismatch") while the
verifier's statement check passes in every environment built on it in that process, as meta
code installing a do-nothing elaborator would: an environment extension, which a replay does
not carry, so in the replayed environment the check is Lean's own again.
The verifier's own scope reset (`#eval show Lean.Elab.Command.CommandElabM ...`) is answered
like Lean does it: silently, whatever the rules say.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time

STANDARD = ["propext", "Classical.choice", "Quot.sound"]


def read_requests():
    """Yield request texts as the REPL frames them; exit(1) like the REPL on a bad frame."""
    current: list[str] = []
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if line.strip() == "":
            if not current:
                die("Lean REPL: could not parse JSON from an empty request")
            yield "".join(current)
            current = []
        else:
            current.append(line.rstrip())
    if current:
        yield "".join(current)


def spent(flag: str | None) -> bool:
    """For `"exit_once": PATH`: the first process to reach the rule creates PATH and crashes;
    once PATH exists the rule crashes nothing (a transient failure)."""
    if flag is None:
        return False
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return True
    return False


def die(message: str, code: int = 1) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)


def emit(obj_or_text) -> None:
    text = (
        obj_or_text
        if isinstance(obj_or_text, str)
        else json.dumps(obj_or_text, indent=1, ensure_ascii=False)
    )
    sys.stdout.write(text + "\n\n")
    sys.stdout.flush()


def log(request: dict) -> None:
    path = os.environ.get("FAKE_REPL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(request) + "\n")
    path = os.environ.get("FAKE_REPL_PID_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "request": request}) + "\n")


def parse(text: str) -> dict:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        die(f"Lean REPL: could not parse JSON: {exc}")
    if not isinstance(obj, dict):
        die("Lean REPL: request is not an object")
    log(obj)
    return obj


def replay(in_path: str, out_path: str) -> None:
    with open(in_path) as f:
        expected = [r for r in split_requests(f.read()) if not skipped(r)]
    with open(out_path) as f:
        answers = split_responses(f.read())
    index = 0
    for text in read_requests():
        if skipped(text):
            continue
        request = parse(text)
        if index >= len(expected) or json.loads(expected[index]) != request:
            die(f"FakeRepl replay: request {index} differs from the transcript: {text[:200]}", 3)
        if index < len(answers):
            emit(answers[index])
        index += 1


def split_requests(text: str) -> list[str]:
    out, current = [], []
    for line in text.split("\n"):
        if line.strip() == "":
            if current:
                out.append("".join(current))
                current = []
        else:
            current.append(line.rstrip())
    if current:
        out.append("".join(current))
    return out


def split_responses(text: str) -> list[str]:
    out, current = [], []
    for line in text.split("\n"):
        if line.strip() == "":
            if current:
                out.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        out.append("\n".join(current))
    return out


def skipped(text: str) -> bool:
    s = text.lstrip()
    return s.startswith("#") or s.startswith("--")


_WRAPPED = re.compile(r"set_option maxHeartbeats (\d+) in\s(.*)\Z", re.S)
_BY_SORRY = re.compile(r":=\s*by\s+sorry\s*\Z")
DEFAULT_HEARTBEATS = 200000
DEAD = "<dead>"  # the state of a failed tactic: nothing runs there


class TacticGraph:
    """Scripted tactic mode (the "tactic_graph" of the rules file, see the module docstring)."""

    def __init__(self, spec: dict | None) -> None:
        self.active = spec is not None
        spec = spec or {}
        self.states: dict = {**spec.get("states", {}), "proved": []}
        self.edges: dict = spec.get("edges", {})
        self.root = spec.get("root") or next(iter(spec.get("states", {})), "proved")
        self.roots: list = spec.get("roots", [])
        self.proof_status = spec.get("proof_status", True)
        self.ids: list[str] = []  # proof state id -> state name
        self.neutered = False  # a tactic changed the process: statement checks pass

    def new_id(self, name: str) -> int:
        self.ids.append(name)
        return len(self.ids) - 1

    def root_answer(self, cmd: str) -> dict | None:
        """The answer to `... := by sorry`: its sorry, with the root's proof state."""
        if not self.active or not _BY_SORRY.search(cmd):
            return None
        name = next((r["state"] for r in self.roots if r["match"] in cmd), self.root)
        line = cmd.count("\n") + 1
        column = len(cmd.rstrip().rsplit("\n", 1)[-1]) - len("sorry")
        sorry = {
            "proofState": self.new_id(name),
            "pos": {"line": line, "column": column},
            "goal": "\n".join(self.states[name]),
            "endPos": {"line": line, "column": column + len("sorry")},
        }
        warning = {
            "severity": "warning",
            "pos": {"line": 1, "column": 8},
            "endPos": {"line": 1, "column": 9},
            "data": "declaration uses `sorry`",
        }
        return {"sorries": [sorry], "messages": [warning]}

    def answer(self, request: dict) -> dict | str:
        """The answer to `{"tactic": ..., "proofState": N}`, or a raw text (garbage)."""
        ps = request.get("proofState")
        if not isinstance(ps, int) or not 0 <= ps < len(self.ids):
            return {"message": "Unknown proof state."}
        state = self.ids[ps]
        limit, tactic = DEFAULT_HEARTBEATS, str(request.get("tactic", "")).strip()
        if m := _WRAPPED.match(tactic):
            limit, tactic = int(m.group(1)), textwrap.dedent(m.group(2)).strip()
        edge = self.edges.get(state, {}).get(tactic, self.edges.get("*", {}).get(tactic))
        if edge is None:
            return {"message": "Lean error:\n<input>:1:1: unknown tactic"}
        if isinstance(edge, str):
            edge = {"to": edge}
        if edge.get("stderr"):
            sys.stderr.write(edge["stderr"] + "\n")
            sys.stderr.flush()
        if edge.get("sleep_s"):
            time.sleep(float(edge["sleep_s"]))
        armed = "exit_if" not in edge or os.path.exists(edge["exit_if"])
        if "exit" in edge and armed and not spent(edge.get("exit_once")):
            die("FakeRepl: scripted crash", int(edge["exit"]))
        if edge.get("garbage"):
            return "this is not JSON"
        if edge.get("neuter_process"):
            self.neutered = True
        if edge.get("heartbeats", 0) > limit:
            return {
                "message": "Lean error:\n(deterministic) timeout at `whnf`, maximum number of "
                f"heartbeats ({limit}) has been reached\nUse `set_option maxHeartbeats <num>` "
                "to set the limit."
            }
        if "lean_error" in edge:
            return {"message": "Lean error:\n" + edge["lean_error"]}
        if "error" in edge:
            answer = {
                "proofStatus": "Incomplete: contains sorry",
                "proofState": self.new_id(DEAD),
                "messages": [
                    {
                        "severity": "error",
                        "pos": {"line": 0, "column": 0},
                        "endPos": {"line": 0, "column": 0},
                        "data": edge["error"],
                    }
                ],
                "goals": [],
            }
        else:
            goals = self.states[edge["to"]]
            status = "Incomplete: open goals remain" if goals else "Completed"
            answer = {
                "proofStatus": edge.get("status", status),
                "proofState": self.new_id(edge["to"]),
                "goals": goals,
            }
        if not self.proof_status:
            answer.pop("proofStatus")
        return answer


class ScriptedLean:
    """The state a scripted REPL keeps across commands."""

    def __init__(self, config: dict) -> None:
        self.rules = config.get("rules", [])
        self.graph = TacticGraph(config.get("tactic_graph"))
        self.envs = 0  # environments created so far; ids are never freed
        self.axioms_of: dict[str, list[str]] = {}
        self.signatures: dict[str, str] = {}  # declared name -> statement text, folded
        self.hog: list[bytearray] = []
        self.env_cmds: list[list[str]] = []  # env id -> the commands it holds, in order
        self.env_neutered: list[bool] = []  # env id -> its statement check is a no-op
        self.neutered = False  # the command being answered runs where the check is a no-op

    def rule_for(self, cmd: str) -> dict:
        reference = REFERENCE in cmd
        return next(
            (r for r in self.rules if matches(r, cmd) and bool(r.get("reference")) == reference),
            {},
        )

    def pickle(self, env: int, path: str) -> None:
        cmds = self.env_cmds[env]
        names = [name for cmd in cmds for part in parts(cmd) for name, _ in declared(part)]
        record = {
            "commands": cmds,
            "declared": {
                n: {"signature": self.signatures.get(n), "axioms": self.axioms_of.get(n)}
                for n in names
            },
        }
        with open(path, "w") as f:
            json.dump(record, f)

    def unpickle(self, path: str) -> None:
        """Rebuild a pickled environment as the next env, or die as the REPL does."""
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError) as exc:
            die(f"uncaught exception: cannot read the pickle: {exc}")
        for part in (p for cmd in record["commands"] for p in parts(cmd)):
            rule = self.rule_for(part)
            if "replay_error" in rule:
                die(f"uncaught exception: {rule['replay_error']}")
            for name, _ in declared(part):
                meaning = record["declared"].get(name, {})
                if meaning.get("signature") is not None:
                    self.signatures[name] = meaning["signature"]
                axioms = rule.get("replay_axioms", meaning.get("axioms"))
                if axioms is not None:
                    self.axioms_of[name] = axioms
        self.env_cmds.append(list(record["commands"]))
        self.env_neutered.append(False)  # constants only: no elaborator comes back
        self.envs += 1

    def neuters(self, cmd: str) -> bool:
        return any(self.rule_for(part).get("neuter_check") for part in parts(cmd))

    def run(self, cmd: str) -> dict | str:
        """The answer to one command (without env), or a raw text to print (garbage)."""
        lines = [ln for ln in cmd.split("\n") if ln.strip()]
        if cmd.startswith(SCOPE_RESET):
            return {}
        if lines and all(ln.startswith(("#print axioms ", "example : type_of%")) for ln in lines):
            answers = verifier_answers(cmd, self.axioms_of, self.signatures, self.neutered)
            return {"messages": answers}
        if m := _SNIPPET.search(cmd):  # a remote check: reference, proof, check in one command
            before = cmd[: m.start()]  # a context (ending in its marker), if any
            answer = self.run(before) if before.strip() else {}
            if isinstance(answer, str):
                return answer
            rest = self.snippet(m.group(1), m.group(2), m.group(3))
            if isinstance(rest, str):
                return rest
            at = before.count("\n")
            for key in ("messages", "sorries"):
                moved = [shift(x, at) for x in rest.get(key, [])]
                if answer.get(key) or moved:
                    answer[key] = [*answer.get(key, []), *moved]
            return answer
        rule = self.rule_for(cmd)
        if "probe" in rule:  # sandbox tests: report what this process could do
            return {"messages": [info(json.dumps(probe(rule["probe"])))]}
        if rule.get("stderr"):
            sys.stderr.write(rule["stderr"] + "\n")
            sys.stderr.flush()
        if rule.get("alloc_mb"):
            try:
                for _ in range(int(rule["alloc_mb"])):
                    self.hog.append(bytearray(1024 * 1024))
            except MemoryError:
                die("MemoryError: out of memory", 137)
        if rule.get("sleep_s"):
            time.sleep(float(rule["sleep_s"]))
        armed = "exit_if" not in rule or os.path.exists(rule["exit_if"])
        if "exit" in rule and armed and not spent(rule.get("exit_once")):
            die("FakeRepl: scripted crash", int(rule["exit"]))
        if rule.get("garbage"):
            return "this is not JSON"
        natives = native_users(cmd)
        for name, signature in declared(cmd):
            by_name = rule.get("axioms_by_name", {})
            self.axioms_of[name] = by_name.get(name, rule.get("axioms", STANDARD))
            if name in natives and name not in by_name and "axioms" not in rule:
                self.axioms_of[name] = [*self.axioms_of[name], "Lean.ofReduceBool"]
            # a rule can say that Lean elaborated this statement to something else
            changed = (
                rule.get("statement_mismatch")
                or rule.get("tamper_reference")
                or rule.get("neuter_check")
            )
            self.signatures[name] = f"<changed {self.envs}>" if changed else signature
            if rule.get("tamper_reference"):
                for other in self.signatures:
                    if other.startswith(REFERENCE):
                        self.signatures[other] = self.signatures[name]
        if "response" in rule:
            answer = dict(rule["response"])
            if rule.get("anchored"):  # positions count from the line where `match` occurs
                at = cmd[: cmd.index(rule["match"])].count("\n")
                for key in ("messages", "sorries"):
                    if key in answer:
                        answer[key] = [shift(x, at) for x in answer[key]]
        elif (root := self.graph.root_answer(cmd)) is not None:
            answer = root
        elif _SORRY.search(cmd):  # as Lean would, unless a rule says otherwise
            warning = {
                "severity": "warning",
                "pos": {"line": 1, "column": 8},
                "endPos": None,
                "data": "declaration uses 'sorry'",
            }
            answer = {"messages": [warning]}
        else:
            answer = {}
        return self.trailing_commands(cmd, answer)

    def trailing_commands(self, cmd: str, answer: dict) -> dict:
        """`#check (...)` and `#print axioms` lines inside a larger command answer at their
        own lines, as the commands that they are."""
        extra = []
        for number, line in enumerate(cmd.split("\n"), start=1):
            if line.startswith("#check ("):
                extra.append(info(line.removeprefix("#check ").strip("()"), number))
            elif line.startswith("#print axioms "):
                (answered,) = verifier_answers(line, self.axioms_of, self.signatures)
                extra.append({**answered, "pos": {"line": number, "column": 0}})
        if extra:
            answer = {**answer, "messages": [*answer.get("messages", []), *extra]}
        return answer

    def snippet(self, reference: str, proof: str, check: str) -> dict | str:
        """Answer the three parts as Lean would the one command they form: each part's
        messages at its own lines."""
        for name, signature in declared(reference):
            self.signatures[name] = signature
        answer = self.run(proof)
        if isinstance(answer, str):
            return answer
        proof_at = reference.count("\n") + 2
        check_at = proof_at + proof.count("\n") + 2
        messages = [shift(m, proof_at) for m in answer.get("messages", [])]
        neutered = self.neutered or self.neuters(proof)
        messages += [
            shift(m, check_at)
            for m in verifier_answers(check, self.axioms_of, self.signatures, neutered)
        ]
        sorries = [shift(x, proof_at) for x in answer.get("sorries", [])]
        out: dict = {}
        if sorries:
            out["sorries"] = sorries
        if messages:
            out["messages"] = messages
        return out


def shift(entry: dict, lines: int) -> dict:
    entry = dict(entry)
    for key in ("pos", "endPos"):
        if entry.get(key):
            entry[key] = {**entry[key], "line": entry[key]["line"] + lines}
    return entry


def script(rules_path: str) -> None:
    with open(rules_path) as f:
        config = json.load(f)
    version = config.get("version", "4.24.0")
    lean = ScriptedLean(config)
    for text in read_requests():
        if skipped(text):
            continue
        request = parse(text)
        env = request.get("env")
        if "unpickleEnvFrom" in request:
            lean.unpickle(request["unpickleEnvFrom"])
            emit({"env": lean.envs - 1})
            continue
        if env is not None and not (isinstance(env, int) and 0 <= env < lean.envs):
            emit({"message": "Unknown environment."})
            continue
        if "pickleTo" in request and env is not None:
            lean.pickle(env, request["pickleTo"])
            emit({"env": env})
            continue
        if "tactic" in request:
            emit(lean.graph.answer(request))
            continue
        if "cmd" not in request:
            emit({"message": "FakeRepl only answers commands"})
            continue
        cmd = request["cmd"]
        if env is None and config.get("header_delay_s"):
            time.sleep(config["header_delay_s"])
        lean.neutered = (env is not None and lean.env_neutered[env]) or lean.graph.neutered
        if cmd.strip() == "#eval Lean.versionString":
            answer: dict | str = {"messages": [info(f'"{version}"')]}
        else:
            answer = lean.run(cmd)
        if isinstance(answer, str):
            emit(answer)
            continue
        answer["env"] = lean.envs
        lean.envs += 1
        lean.env_cmds.append([*(lean.env_cmds[env] if env is not None else []), cmd])
        lean.env_neutered.append(lean.neutered or lean.neuters(cmd))
        emit(answer)


REFERENCE = "prover_reference_"
SCOPE_RESET = "#eval show Lean.Elab.Command.CommandElabM Unit from"
_SORRY = re.compile(r"(?<![\w'.])sorry(?![\w'!?])")
_DECL = re.compile(
    r"(?:theorem|lemma)\s+(\S+)(.*?):=|axiom\s+(\S+)(.*?)(?=\n\s*\n|\Z)"
    # a `def` (FILE mode sends each `example` as one): its signature never crosses a blank line
    r"|(?<![\w.])def\s+(\S+)((?:(?!\n\s*\n).)*?):=",
    re.S,
)
_CHECK = re.compile(r"example : type_of% @(\S+) := @_root_\.(\S+)")
_SNIPPET = re.compile(
    r"^(axiom prover_reference_\S+.*?)\n\n(.*)\n\n(example : type_of% @\S+ := @_root_\.\S+\n"
    r"#print axioms \S+)\s*$",
    re.S | re.M,
)


def parts(cmd: str) -> list[str]:
    """A remote check's one command as the commands it stands for (context, reference,
    proof), so that rules match the proof as they do in `run`."""
    m = _SNIPPET.search(cmd)
    if m is None:
        return [cmd]
    return [p for p in (cmd[: m.start()], m.group(1), m.group(2)) if p.strip()]


def declared(cmd: str) -> list[tuple[str, str]]:
    """(name, statement key) of each theorem the command declares; the key stands for what a
    real Lean would elaborate: the text up to binder names and grouping (`alpha_key`)."""
    return [
        (
            (m.group(1) or m.group(3) or m.group(5)).removeprefix("_root_."),
            alpha_key(" ".join((m.group(2) or m.group(4) or m.group(6) or "").split())),
        )
        for m in _DECL.finditer(cmd)
    ]


def native_users(cmd: str) -> set[str]:
    """Names declared in `cmd` whose text (up to the next declaration) runs `native_decide`:
    Lean lists `Lean.ofReduceBool` under their `#print axioms`, whatever a rule says."""
    found = list(_DECL.finditer(cmd))
    ends = [m.start() for m in found[1:]] + [len(cmd)] if found else []
    return {
        (m.group(1) or m.group(3) or m.group(5)).removeprefix("_root_.")
        for m, end in zip(found, ends, strict=True)
        if "native_decide" in cmd[m.start() : end]
    }


_OPEN = {"(": ")", "{": "}", "[": "]", "⦃": "⦄"}


def alpha_key(signature: str) -> str:
    """`signature` (binders, `:`, conclusion) with its binder groups split into one binder
    each and the names bound renamed by position: two statements that differ only in binder
    names (`h0` for `h₀`) or grouping (`(a b : ℝ)` for `(a : ℝ) (b : ℝ)`) get one key, as the
    kernel's types would be equal. Text it cannot read is kept as it is."""
    binders: list[tuple[str, str, str]] = []  # (bracket, name, type)
    i = 0
    while i < len(signature) and signature[i] in _OPEN:
        depth, j = 0, i
        while j < len(signature):
            if signature[j] in _OPEN:
                depth += 1
            elif signature[j] in _OPEN.values():
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner = signature[i + 1 : j]
        names, colon, kind = inner.partition(" : ")
        if not colon:  # `[Fact p]`: an anonymous instance
            binders.append((signature[i], "", inner.strip()))
        else:
            binders += [(signature[i], n, kind.strip()) for n in names.split()]
        i = j + 1
        while i < len(signature) and signature[i] == " ":
            i += 1
    rest = signature[i:]
    renamed = {name: f"x{k}" for k, (_, name, _) in enumerate(binders) if name}

    def rename(text: str) -> str:
        for name, new in renamed.items():
            text = re.sub(rf"(?<![\w'.]){re.escape(name)}(?![\w'])", new, text)
        return text

    parts = [f"{b}{rename(t)}" for b, _, t in binders]
    return " ".join(parts) + " " + rename(rest)


def verifier_answers(
    cmd: str, axioms_of: dict, signatures: dict, neutered: bool = False
) -> list[dict]:
    """Answers to the verifier's own check: `example : type_of% @REF := @_root_.NAME` (the
    proved statement is the reference's; never an error when `neutered`) and
    `#print axioms _root_.NAME`."""
    messages = []
    for number, line in enumerate(cmd.split("\n"), start=1):
        if (m := _CHECK.match(line)) and neutered:
            continue
        if m:
            ref, name = m.group(1).removeprefix("_root_."), m.group(2)
            if name not in signatures:  # declared inside a namespace: recorded unqualified
                name = name.rsplit(".", 1)[-1]
            if name not in signatures:
                messages.append(error(f"unknown identifier '_root_.{name}'", number))
            elif signatures.get(ref) != signatures[name]:
                messages.append(error("type mismatch\n  the proved statement differs", number))
        elif line.startswith("#print axioms "):
            name = line.split()[2].removeprefix("_root_.")
            axioms = axioms_of.get(name, axioms_of.get(name.rsplit(".", 1)[-1], STANDARD))
            text = (
                f"'{name}' depends on axioms: [{', '.join(axioms)}]"
                if axioms
                else f"'{name}' does not depend on any axioms"
            )
            messages.append(info(text, number))
    return messages


def error(data: str, line: int) -> dict:
    return {
        "severity": "error",
        "pos": {"line": line, "column": 0},
        "endPos": {"line": line, "column": 7},
        "data": data,
    }


def matches(rule: dict, cmd: str) -> bool:
    """`match` is a substring of the command, or with `"exact": true` the whole command."""
    if "match" not in rule:
        return False
    return cmd.rstrip() == rule["match"].rstrip() if rule.get("exact") else rule["match"] in cmd


def probe(what: dict) -> dict:
    """Try what a malicious proof would try; report each outcome."""
    import socket

    result: dict = {"pid": os.getpid(), "env": sorted(os.environ)}
    if "connect" in what:
        host, port = what["connect"]
        try:
            with socket.create_connection((host, port), timeout=3) as conn:
                result["connect"] = conn.recv(100).decode()
        except OSError as exc:
            result["connect"] = f"error: {exc}"
    for path in what.get("write", []):
        try:
            with open(path, "w") as f:
                f.write("x")
            result[path] = "written"
        except OSError as exc:
            result[path] = f"error: {exc.strerror}"
    return result


def info(data: str, line: int = 1) -> dict:
    return {
        "severity": "info",
        "pos": {"line": line, "column": 0},
        "endPos": {"line": line, "column": 6},
        "data": data,
    }


if __name__ == "__main__":
    # Lean reads and writes UTF-8 whatever the locale says.
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "replay":
        replay(sys.argv[2], sys.argv[3])
    elif mode == "script":
        script(sys.argv[2])
    else:
        die("usage: fake_repl.py replay IN OUT | script RULES.json", 2)
