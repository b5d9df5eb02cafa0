"""The REPL client parses every recorded transcript of the real REPL, through real pipes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from prover.lean.protocol import (
    CommandResponse,
    ReplError,
    TacticResponse,
    encode_request,
    is_skipped,
    parse_response_text,
    split_requests,
    split_responses,
)
from prover.lean.repl import LeanRepl, ReplFailure
from prover.lean.sandbox import ReplCommand

from conftest import FAKE_REPL, data_path, plain_factory

TRANSCRIPTS = data_path("repl-transcripts")
CASES = sorted(p.stem for p in TRANSCRIPTS.glob("*.in"))

FAR = float("inf")  # no deadline for writes in these tests


def test_transcripts_are_present() -> None:
    assert len(CASES) == 57
    assert len(list(TRANSCRIPTS.glob("*.expected.out"))) == 55


@pytest.mark.parametrize("case", CASES)
def test_client_replays_transcript(case: str) -> None:
    stdin_text = (TRANSCRIPTS / f"{case}.in").read_text()
    out_path = TRANSCRIPTS / f"{case}.expected.out"
    requests = [json.loads(r) for r in split_requests(stdin_text) if not is_skipped(r)]
    if not out_path.exists():
        # The REPL's own suite has inputs without recorded output (pickle round trips that
        # need files); their requests must still frame and encode cleanly.
        for request in requests:
            assert encode_request(request).endswith(b"}\n\n")
        pytest.skip(f"{case}: the REPL suite records no output for it")
    expected = [json.loads(block) for block in split_responses(out_path.read_text())]
    command = ReplCommand(
        (sys.executable, str(FAKE_REPL), "replay", str(TRANSCRIPTS / f"{case}.in"), str(out_path))
    )
    repl = LeanRepl(plain_factory(command)(), header="")
    try:
        for request, want in zip(requests, expected, strict=False):
            got = repl.send(request, timeout=30)
            assert got.raw == want
            assert got == parse_response_text(json.dumps(want))
            if "proofState" in want and "goals" in want:
                assert isinstance(got, TacticResponse)
            elif "message" in want and "env" not in want:
                assert isinstance(got, ReplError)
            else:
                assert isinstance(got, CommandResponse)
    finally:
        repl.close()


def test_typed_fields_of_a_sorry_response() -> None:
    text = (TRANSCRIPTS / "readme.expected.out").read_text()
    first, second, third = (parse_response_text(b) for b in split_responses(text))
    assert isinstance(first, CommandResponse) and first.env == 0
    assert first.sorries[0].goal == "x : Unit\n⊢ Nat" and first.sorries[0].proof_state == 0
    assert first.messages[0].severity == "warning"
    assert first.messages[0].pos is not None and first.messages[0].pos.column == 4
    assert isinstance(second, TacticResponse) and second.goals == ("x : Unit\n⊢ Int",)
    assert second.proof_status == "Incomplete: open goals remain"
    assert isinstance(third, TacticResponse) and third.proof_status == "Completed"


def test_multiline_code_is_sent_with_escapes_only() -> None:
    code = "theorem t : Filter.Tendsto f (𝓝 0) (𝓝 0) := by\n\n  rfl\t\u2028"
    data = encode_request({"cmd": code, "env": 0})
    body = data[:-2]
    assert b"\n" not in body and data.endswith(b"\n\n")
    assert "𝓝".encode() in body  # astral characters travel as UTF-8, never as surrogates
    # What the REPL reconstructs (trimmed lines, concatenated) is the original request.
    assert json.loads(split_requests(data.decode())[0])["cmd"] == code


def test_double_dies_on_second_blank_line(tmp_path: Path) -> None:
    """The double enforces the real framing: an extra blank line is a fatal empty request."""
    (tmp_path / "rules.json").write_text("{}")
    command = ReplCommand((sys.executable, str(FAKE_REPL), "script", str(tmp_path / "rules.json")))
    transport = plain_factory(command)()
    try:
        transport.write(b'{"cmd": "def x := 1"}\n\n\n', FAR)
        import time

        deadline = time.monotonic() + 10
        lines = []
        while True:
            line = transport.read_line(deadline)
            if not line:
                break
            lines.append(line)
        assert json.loads(b"".join(lines)) == {"env": 0}
        with pytest.raises(Exception, match="end of output"):
            transport.read_line(deadline)
        assert "empty request" in transport.diagnostics() or not transport.alive()
    finally:
        transport.kill()
        transport.remove_files()


def test_bad_json_is_a_crash_not_a_hang(fake_repl_script) -> None:
    repl = LeanRepl(plain_factory(fake_repl_script())(), header="")
    repl._transport.write(b"{not json}\n\n", FAR)
    with pytest.raises(ReplFailure) as failure:
        repl.send({"cmd": "def x := 1"}, timeout=10)
    assert failure.value.reason == "crash"
    assert "could not parse JSON" in failure.value.detail


def test_double_skips_comment_requests_without_answering(fake_repl_script) -> None:
    repl = LeanRepl(plain_factory(fake_repl_script())(), header="")
    try:
        repl._transport.write(b"# a comment request\n\n-- another one\n\n", FAR)
        response = repl.send({"cmd": "def 𝓧 := 1"}, timeout=10)
        assert isinstance(response, CommandResponse) and response.env == 0
    finally:
        repl.close()
