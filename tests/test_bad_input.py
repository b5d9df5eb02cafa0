"""Bad input never kills a run: every record of a JSONL file gets a verdict (`invalid_input`
for one that cannot be checked), every server request an answer, never a traceback or a 500.
Lean's side is the FakeRepl double."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest

from prover.jsonl import MAX_DEPTH, BadLine, iter_json_lines, parse_json_text, read_jsonl
from prover.lean.input_check import (
    item_problem,
    json_type,
    text_problem,
    unencodable_field,
)
from prover.lean.items_io import (
    InvalidRecord,
    VerdictWriter,
    content_key,
    finished_keys,
    read_items,
)
from prover.lean.protocol import UnencodableRequest, encode_request
from prover.lean.verdict import REASONS, CheckItem, Verdict

from conftest import ROOT, run_prover

HEADER = "import Mathlib\n\n"
DEEP = "[" * 100_000 + "]" * 100_000


def good(i: int, **extra: object) -> dict:
    return {
        "name": f"t{i}",
        "header": HEADER,
        "formal_statement": f"theorem t{i} : ({i} : ℕ) = {i} := by\n",
        "proof": "  rfl",
        **extra,
    }


def repl_arg(command) -> str:
    return shlex.join(command.argv)


def one_line_no_traceback(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# (raw JSONL line, expected key, words the verdict's detail must hold)
BAD_LINES: list[tuple[str, str, str]] = [
    (json.dumps(good(90, proof="  rfl \ud800")), "line {n}", "`proof` holds a lone surrogate"),
    (json.dumps(good(91, header="\udfff")), "line {n}", "`header` holds a lone surrogate"),
    (
        json.dumps(good(92, formal_statement="theorem x\ud83d : True := by")),
        "line {n}",
        "`formal_statement` holds a lone surrogate",
    ),
    (json.dumps(good(93, name="\ud800")), "line {n}", "`name` holds a lone surrogate"),
    (json.dumps(good(94, id="p\ud800")), "line {n}", "`id` holds a lone surrogate"),
    (json.dumps(good(95, id="kept", proof="\ud800")), "kept", "`proof` holds a lone surrogate"),
    (json.dumps(good(96))[:-1] + ', "meta": ' + DEEP + "}", "line {n}", "nested deeper"),
    (
        json.dumps(good(97, meta=[[[[]]]]))[:-1] + ', "m": ' + "[" * 100 + "]" * 100 + "}",
        "line {n}",
        "nested deeper",
    ),  # fmt: skip
    ("[1, 2]", "line {n}", "expected a JSON object, got an array"),
    ("42", "line {n}", "expected a JSON object, got a number"),
    ('"proof"', "line {n}", "expected a JSON object, got a string"),
    ("null", "line {n}", "expected a JSON object, got null"),
    ('{"name": "oops', "line {n}", "invalid JSON"),
    (json.dumps(good(98, proof=7)), "line {n}", "`proof` is a number, not a string"),
    (json.dumps({k: v for k, v in good(99).items() if k != "proof"}), "line {n}", "missing"),
    (json.dumps(good(100, id={"a": 1})), "line {n}", "`id` is an object"),
    (json.dumps(good(101, id=1.5)), "line {n}", "`id` is a number"),
    (json.dumps(good(102, id=True)), "line {n}", "`id` is a boolean"),
    (json.dumps(good(103))[:-1] + ', "proof": "sorry"}', "line {n}", "duplicate key 'proof'"),
    (json.dumps(good(104, proof="  rfl\u0000")), "line {n}", "NUL character"),
    (json.dumps(good(105))[:-1] + ', "n": ' + "9" * 5000 + "}", "line {n}", "invalid JSON"),
    # statements the verifier cannot build its reference from (a traceback before)
    (json.dumps(good(106, formal_statement="theorem x : True")), "line {n}", "has no `:=`"),
    (json.dumps(good(107, formal_statement="def x : ℕ := by")), "line {n}", "declares no theorem"),
]


def write_mixed(path: Path) -> dict[int, tuple[str, str]]:
    """Good records around every bad line (and a non-UTF-8 one); {line: (key, detail words)}."""
    raw: list[bytes] = [json.dumps(good(0)).encode()]
    expected: dict[int, tuple[str, str]] = {}
    for line, key, words in BAD_LINES:
        raw.append(line.encode())  # json.dumps wrote surrogates as \ud800 escapes: valid JSON
        expected[len(raw)] = (key.format(n=len(raw)), words)
    raw.append(b'{"name": "caf\xe9"}')
    expected[len(raw)] = (f"line {len(raw)}", "not UTF-8")
    raw += [b"", json.dumps(good(1, id="p1")).encode(), json.dumps(good(2, id=7)).encode()]
    raw.append(json.dumps(good(3)).encode())
    path.write_bytes(b"\n".join(raw) + b"\n")
    return expected


def test_every_bad_line_gets_invalid_input_and_the_others_their_verdict(
    fake_repl_script, tmp_path
) -> None:
    items, out, log = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "log.jsonl"
    expected = write_mixed(items)
    args = ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none"]
    args += ["--repl", repl_arg(fake_repl_script())]
    result = run_prover(*args, env={"FAKE_REPL_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    summary = one_line_no_traceback(result.stderr)
    assert "4 checked, 4 accepted" in summary
    assert f"{len(expected)} invalid input (first: {items}:2: field `proof`" in summary
    verdicts = {v["id"]: v for v in map(json.loads, out.read_text().splitlines())}
    # one verdict per non-blank line: the good ones checked, the bad ones invalid_input
    assert len(verdicts) == len(expected) + 4
    for key in ("p1", "7"):
        assert verdicts[key]["reason"] == "ok"
    assert sorted(v["name"] for v in verdicts.values() if v["reason"] == "ok") == [
        "t0",
        "t1",
        "t2",
        "t3",
    ]
    for line, (key, words) in expected.items():
        verdict = verdicts[key]
        assert verdict["reason"] == "invalid_input" and not verdict["accepted"], (line, verdict)
        assert verdict["detail"].startswith(f"line {line}: ") and words in verdict["detail"]
    assert verdicts["kept"]["name"] == "t95"  # a usable name still names the verdict
    assert verdicts[f"line {5}"]["name"] == ""  # a name with no UTF-8 form does not
    assert "\ud800" not in log.read_text()  # nothing bad ever reached the REPL
    # resuming finds every verdict, bad lines included: nothing is checked twice
    again = run_prover(*args)
    assert again.returncode == 0, again.stderr
    assert f"0 checked, 0 accepted, {len(verdicts)} already in" in again.stderr
    assert len(out.read_text().splitlines()) == len(verdicts)


def test_control_characters_reach_lean_escaped_and_get_a_verdict(fake_repl_script, tmp_path):
    items, out, log = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "log.jsonl"
    odd = "\x01\x1b[2J\x0c\r\x7f\u2028\u0085"
    rows = [good(0, proof=f"  rfl -- {odd}"), good(1, proof=f"  rfl\n  -- {odd}\n")]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none"]
    args += ["--repl", repl_arg(fake_repl_script())]
    result = run_prover(*args, env={"FAKE_REPL_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    one_line_no_traceback(result.stderr)
    assert [json.loads(v)["reason"] for v in out.read_text().splitlines()] == ["ok", "ok"]


def test_a_file_of_only_bad_lines_still_gets_verdicts(fake_repl_script, tmp_path) -> None:
    items, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    items.write_text("[]\n" + DEEP + "\n")
    args = ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none"]
    result = run_prover(*args, "--repl", repl_arg(fake_repl_script()))
    assert result.returncode == 0, result.stderr
    assert "0 checked, 0 accepted, 2 invalid input" in one_line_no_traceback(result.stderr)
    assert [json.loads(v)["id"] for v in out.read_text().splitlines()] == ["line 1", "line 2"]


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_out_over_the_input_is_refused_before_writing(fake_repl_script, tmp_path, spelling):
    items = tmp_path / "a.jsonl"
    items.write_text(json.dumps(good(0)) + "\n")
    before = items.read_bytes()
    out = {"same": str(items), "dot": "./a.jsonl"}.get(spelling, str(tmp_path / "b.jsonl"))
    if spelling == "symlink":
        (tmp_path / "b.jsonl").symlink_to(items)
    elif spelling == "hardlink":
        os.link(items, tmp_path / "b.jsonl")
    args = ["check", "--jsonl", "a.jsonl", "--out", out, "--sandbox", "none"]
    env = {"PYTHONPATH": str(ROOT)}  # run from tmp_path: import this checkout's prover
    result = run_prover(*args, "--repl", repl_arg(fake_repl_script()), cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "is the --jsonl input itself" in one_line_no_traceback(result.stderr)
    assert items.read_bytes() == before


def test_clashing_keys_are_one_line_before_any_work(fake_repl_script, tmp_path) -> None:
    items, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    items.write_text(json.dumps(good(0, id="line 2")) + "\n[]\n")
    args = ["check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none"]
    result = run_prover(*args, "--repl", repl_arg(fake_repl_script()))
    assert result.returncode == 2
    assert "items.jsonl:2: id 'line 2' already used on line 1" in one_line_no_traceback(
        result.stderr
    )
    assert not out.exists()


# -- FILE mode -------------------------------------------------------------------------------


def test_file_mode_nul_is_one_line_and_bom_is_not_text(fake_repl_script, tmp_path) -> None:
    repl = repl_arg(fake_repl_script())
    lean = tmp_path / "a.lean"
    lean.write_text(HEADER + "theorem t : True := trivial\n-- \x00\n")
    result = run_prover("check", str(lean), "--sandbox", "none", "--repl", repl)
    assert result.returncode == 2
    assert "holds a NUL character (line 4)" in one_line_no_traceback(result.stderr)
    lean.write_bytes(b"\xef\xbb\xbf" + (HEADER + "theorem t : True := trivial\n").encode())
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl", repl)
    assert result.returncode == 0, result.stdout + result.stderr
    (verdict,) = json.loads(result.stdout)["theorems"]
    assert verdict["reason"] == "ok"


# -- prover serve ----------------------------------------------------------------------------


@pytest.fixture
def client(fake_repl_script):
    from fastapi.testclient import TestClient

    from prover.lean.pool import ReplPool, VerifierConfig
    from prover.server.app import create_app

    from conftest import plain_factory

    factory = plain_factory(fake_repl_script())
    app = create_app(
        lambda: ReplPool(VerifierConfig(workers=1, timeout=10), transport_factory=factory)
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post(client, path: str, body: str):
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


GOOD_CODE = json.dumps(HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl")


def test_serve_bad_text_is_a_per_snippet_invalid_input(client) -> None:
    body = (
        '{"snippets": [{"id": "bad", "code": "theorem t : True := by trivial \\ud800"},'
        ' {"id": "nul", "code": "a\\u0000b"},'
        f' {{"id": "good", "code": {GOOD_CODE}}},'
        f' {{"id": "odd\\ud800", "code": {GOOD_CODE}}}]}}'
    )
    reply = post(client, "/api/check", body)
    assert reply.status_code == 200, reply.text
    results = {r["id"]: r for r in reply.json()["results"]}
    assert results["bad"]["error"].startswith("invalid_input: field `code` holds a lone")
    assert results["nul"]["error"].startswith("invalid_input: field `code` holds a NUL")
    assert results["good"]["error"] is None and results["good"]["response"] == {}
    assert results["odd\ud800"]["error"] is None  # an id is echoed back, \u-escaped
    older = post(client, "/verify", '{"codes": [{"custom_id": "x", "proof": "\\udc00"}]}')
    assert older.status_code == 200
    assert older.json()["results"][0]["error"].startswith("invalid_input:")
    metrics = client.get("/metrics").text
    assert 'prover_snippets_total{outcome="invalid_input"} 3.0' in metrics
    assert client.get("/health").json()["in_flight"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"snippets": [{"id": "a", "code": "x"}], "deep": ' + DEEP + "}", 400),
        ('{"snippets": ' + "[" * 500 + "]" * 500 + "}", 422),
        ('{"snippets": [5]}', 422),
        ('{"snippets": [null]}', 422),
        ('{"snippets": [{"id": "a", "code": 5}]}', 422),
        ('{"snippets": [{"id": {"a": 1}, "code": "x"}]}', 422),
        ('{"snippets": [{"id": 5, "code": "\\ud800"}]}', 422),  # the error quotes the input
        ('["\\ud800"]', 422),
        ('"\\ud800', 422),
    ],
)
def test_serve_bad_bodies_are_4xx_never_500(client, body: str, status: int) -> None:
    reply = post(client, "/api/check", body)
    assert reply.status_code == status, reply.text
    json.loads(reply.content)  # still a JSON answer
    after = post(client, "/api/check", f'{{"snippets": [{{"id": "a", "code": {GOOD_CODE}}}]}}')
    assert after.status_code == 200 and after.json()["results"][0]["error"] is None


def test_remote_client_judges_unsendable_text_without_the_network() -> None:
    from prover.lean.remote import RemoteVerifier

    verifier = RemoteVerifier("http://127.0.0.1:9", max_attempts=1)  # nothing listens there
    try:
        start = time.monotonic()
        verdict = verifier.check(CheckItem("t", HEADER, "theorem t : True := by", "\ud800"))
        assert verdict.reason == "invalid_input" and "lone surrogate" in verdict.detail
        assert time.monotonic() - start < 1
    finally:
        verifier.close()


# -- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{oops", "invalid JSON"),
        (DEEP, "nested deeper"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
        ('{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
        ("1" * 5000, "4300 digits"),
        (b"\xff", "invalid JSON"),
    ],
)
def test_parse_json_text_bad(text, words) -> None:
    with pytest.raises(BadLine, match=words):
        parse_json_text(text)


def test_parse_json_text_good() -> None:
    assert parse_json_text('"\\ud800"') == "\ud800"  # text problems are the caller's to judge
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json_text(nested) is not None


def test_iter_json_lines_spoils_only_the_bad_line(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n\xff\xfe\n\n  \n[1]\n')
    got = list(iter_json_lines(path, ValueError))
    assert [n for n, _ in got] == [1, 2, 5]
    assert got[0][1] == {"a": 1} and isinstance(got[1][1], BadLine) and got[2][1] == [1]
    with pytest.raises(ValueError, match="is a directory"):
        list(iter_json_lines(tmp_path, ValueError))


@pytest.mark.parametrize(
    ("line", "words"),
    [(DEEP, "x.jsonl:2: JSON nested deeper"), ("null", "x.jsonl:2: expected a JSON object")],
)
def test_read_jsonl_names_the_line(tmp_path, line, words) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n' + line + "\n")
    with pytest.raises(ValueError, match=words):
        list(read_jsonl(path, ValueError))


def test_text_problem_and_item_problem() -> None:
    assert text_problem("proof", "  rfl -- \x01 ℕ 𝓝") is None
    assert "is null" in (text_problem("proof", None) or "")
    assert "U+D800 at character 2" in (text_problem("proof", "ab\ud800") or "")
    assert "NUL character (at character 1)" in (text_problem("proof", "a\0") or "")
    item = CheckItem("t", "", "theorem t : True := by", "trivial", context="\udc80")
    assert "`context` holds a lone surrogate" in (item_problem(item) or "")
    assert [json_type(v) for v in (None, True, 1, "", [], {})] == [
        "null",
        "a boolean",
        "a number",
        "a string",
        "an array",
        "an object",
    ]
    assert unencodable_field({"a": [1, {"b": "\ud800"}]}) == "record.a[1].b"
    assert unencodable_field({"\ud800": 1}) == "record (a key)"
    assert unencodable_field({"a": ["ok"]}) is None


def test_read_items_keys_and_invalid_records(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(
        "\n".join([json.dumps(good(0)), "[]", json.dumps(good(1, id=3)), json.dumps(good(0))])
    )
    entries = read_items(path)
    keys = [k for k, _ in entries]
    assert keys[1:3] == ["line 2", "3"]
    assert keys[0].endswith("-1") and keys[3] == keys[0][:-1] + "2"  # equal samples stay two
    assert entries[1][1] == InvalidRecord(2, "", "expected a JSON object, got an array")
    assert entries[1][1].verdict().reason == "invalid_input"


def test_read_items_is_linear_on_a_huge_record(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    proof = "  rfl\n" + ("  -- ℕ" + "x" * 70 + "\n") * (8 * 1024 * 1024 // 80)
    path.write_text(json.dumps(good(0, proof=proof), ensure_ascii=False) + "\n")
    start = time.monotonic()
    ((_, item),) = read_items(path)
    assert isinstance(item, CheckItem) and item.proof == proof
    assert time.monotonic() - start < 5  # linear: about 0.2 s here


def test_content_key_takes_any_str() -> None:
    assert len(content_key(good(0, proof="\ud800"))) == 24


def test_verdict_writer_never_writes_half_a_line(tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    writer = VerdictWriter.open(out)
    odd = Verdict("t", False, "error", messages=[{"data": "from a server \ud800"}])
    writer.write("a", odd)
    writer.write("b", Verdict("ℕ", True, "ok"))
    writer.close()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["messages"][0]["data"] == "from a server \ud800"
    assert json.loads(lines[1])["name"] == "ℕ"  # others keep raw UTF-8
    out.write_text(out.read_text() + DEEP + "\n" + '{"id": {"x": 1}, "reason": "ok"}\n')
    assert finished_keys(out) == {"a", "b"}


def test_encode_request_refuses_a_lone_surrogate_before_sending() -> None:
    with pytest.raises(UnencodableRequest, match="U\\+D800"):
        encode_request({"cmd": "theorem t : True := by\n  trivial -- \ud800", "env": 0})
    data = encode_request({"cmd": "a\x00b\x1b\r\n𝓝", "env": 0})
    assert data.count(b"\n") == 2 and "𝓝".encode() in data and b"\\u0000" in data


def test_invalid_input_is_a_reason_and_cacheable() -> None:
    from harness.verdict_cache import CACHEABLE, text_hash

    assert "invalid_input" in REASONS and "invalid_input" in CACHEABLE
    assert len(text_hash("c", CheckItem("t", "", "s", "\ud800"))) == 64


def test_suite_rows_name_the_bad_line(tmp_path) -> None:
    from harness.suites import SuiteError, load_suite

    row = {
        "name": "a",
        "split": "test",
        "header": "",
        "formal_statement": "theorem a : 1 = 1 := by",
    }
    for bad, words in [
        (json.dumps({**row, "header": "\ud800"}), "x.jsonl:2: field `header` holds a lone"),
        (json.dumps({**row, "informal_prefix": ["\ud800"]}), "x.jsonl:2: record.informal_prefix"),
        (json.dumps(row)[:-1] + ', "x": ' + DEEP + "}", "x.jsonl:2: JSON nested deeper"),
        ("7", "x.jsonl:2: expected a JSON object"),
        (json.dumps({**row, "context": "a\0"}), "x.jsonl:2: field `context` holds a NUL"),
    ]:
        path = tmp_path / "x.jsonl"
        path.write_text(json.dumps(row) + "\n" + bad + "\n")
        with pytest.raises(SuiteError, match=words):
            load_suite(str(path))


def test_serve_prove_refuses_unsendable_text(fake_repl_script) -> None:
    from fastapi.testclient import TestClient

    from prover.lean.pool import ReplPool, VerifierConfig
    from prover.prompts import get_format
    from prover.server.app import create_app

    from conftest import plain_factory
    from doubles.scripted_model import ScriptedModel

    factory = plain_factory(fake_repl_script())
    app = create_app(
        lambda: ReplPool(VerifierConfig(workers=1, timeout=10), transport_factory=factory),
        prover=(ScriptedModel({"easy": ["  norm_num\n```"]}), get_format("deepseek-v1.5")),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        for field in ("header", "formal_statement", "informal_prefix"):
            body = {"formal_statement": "theorem easy : (2 : ℕ) + 2 = 4 := by", "attempts": 1}
            body[field] = body.get(field, "") + "\ud800"
            reply = post(c, "/prove", json.dumps(body))
            assert reply.status_code == 422, reply.text
            assert f"invalid_input: field `{field}` holds a lone surrogate" in reply.text
        assert c.get("/health").json()["in_flight"] == 0


@pytest.mark.parametrize(
    ("args", "words", "command"),
    [
        (["eval", "countdown", "--n", "0"], "Invalid value for '--n'", "prover eval"),
        (["eval", "countdown", "--bogus"], "No such option: --bogus", "prover eval"),
        (["report"], "Missing argument 'RUN_DIR'", "prover report"),
        (["nosuch"], "No such command 'nosuch'", "prover"),
        (["suite", "check"], "Missing argument", "prover suite check"),
    ],
)
def test_a_bad_option_or_command_is_one_line_naming_the_help(args, words, command) -> None:
    done = run_prover(*args)
    assert done.returncode == 2
    line = one_line_no_traceback(done.stderr)
    # `run_prover` runs `python -m prover`: the help named is that program's
    assert words in line and line.endswith(f"{command} --help`)")
    assert "╭" not in done.stderr and "Usage:" not in done.stderr


def test_no_command_still_prints_the_help_and_help_exits_0() -> None:
    bare = run_prover()
    assert bare.returncode == 2 and "prover [OPTIONS] COMMAND" in bare.stdout + bare.stderr
    helped = run_prover("--help")
    assert helped.returncode == 0 and "prover [OPTIONS] COMMAND" in helped.stdout
    assert helped.stdout.count("Usage:") == 1 and bare.stdout.count("Usage:") == 1
