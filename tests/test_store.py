"""The run store: whole lines survive a kill, a torn last line is cut, runs never mix."""

from __future__ import annotations

import json

import pytest

from harness.store import RunStore, Sample, StoreError

MANIFEST = {"suite": "s", "n": 2, "model": "m"}


def test_samples_and_verdicts_round_trip(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        run = store.create(MANIFEST)
        store.add_samples([Sample("p", 0, "proof ∀", 3, "stop"), Sample("p", 1, "x", 1)])
        done = Sample("p", 0, "proof ∀", accepted=True, reason="ok", text_hash="h",
                      source="verifier", verify_s=0.5)  # fmt: skip
        store.add_verdicts([done])
    with RunStore(tmp_path) as store:
        run = store.resume(MANIFEST, keys=["suite", "n", "model"])
    first, second = run.samples[("p", 0)], run.samples[("p", 1)]
    assert (first.completion, first.tokens, first.finish) == ("proof ∀", 3, "stop")
    verdict = (first.accepted, first.reason, first.source, first.verify_s)
    assert verdict == (True, "ok", "verifier", 0.5)
    assert not second.verified
    assert run.bytes == (tmp_path / "samples.jsonl").stat().st_size


def test_a_torn_last_line_is_cut_and_the_rest_kept(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create(MANIFEST)
        store.add_samples([Sample("p", 0, "a"), Sample("p", 1, "b")])
    path = tmp_path / "samples.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole[: whole.rfind(b"\n", 0, len(whole) - 1) + 1] + b'{"type": "sam')
    with RunStore(tmp_path) as store:
        run = store.resume(MANIFEST, keys=["n"])
        assert set(run.samples) == {("p", 0)}
        store.add_samples([Sample("p", 1, "b again")])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["completion"] for r in lines] == ["a", "b again"]


def test_runs_never_mix(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create(MANIFEST)
        store.add_samples([Sample("p", 0, "a")])
    with pytest.raises(StoreError, match="already holds a run"):
        RunStore(tmp_path).create(MANIFEST)
    with pytest.raises(StoreError, match="model=m, not other"):
        RunStore(tmp_path).resume({**MANIFEST, "model": "other"}, keys=["suite", "model"])
    with pytest.raises(StoreError, match="nothing to resume"):
        RunStore(tmp_path / "empty").resume(MANIFEST, keys=["n"])


def test_a_corrupt_line_in_the_middle_is_an_error_not_silence(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create(MANIFEST)
        store.add_samples([Sample("p", 0, "a")])
    path = tmp_path / "samples.jsonl"
    path.write_text("garbage\n" + path.read_text())
    with pytest.raises(StoreError, match="samples.jsonl:1"):
        RunStore(tmp_path).resume(MANIFEST, keys=["n"])
