"""The run store: whole lines survive a kill, a torn last line is cut, runs never mix."""

from __future__ import annotations

import json
import os

import pytest

from harness.store import RunStore, Sample, StoredRun, StoreError, StoreWriteError
from harness.suites import Problem

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


def test_a_refused_resume_names_the_differing_problems_once(tmp_path) -> None:
    names = [f"p{i}" for i in range(12)]
    with RunStore(tmp_path) as store:
        store.create({**MANIFEST, "problems": names})
    with pytest.raises(StoreError) as err:
        RunStore(tmp_path).resume({**MANIFEST, "problems": names[:2]}, keys=["problems"])
    message = str(err.value)
    assert "12 problems, not 2" in message
    assert "only in the stored run: p2, p3, p4, p5, p6 and 5 more" in message
    assert message.count("p2") == 1 and "only now" not in message and "\n" not in message
    with pytest.raises(StoreError, match="the same 12 problems in another order"):
        RunStore(tmp_path).resume({**MANIFEST, "problems": names[::-1]}, keys=["problems"])
    with pytest.raises(StoreError, match=r"12 problems, not 13 \(only now: q\): resume with"):
        RunStore(tmp_path).resume({**MANIFEST, "problems": [*names, "q"]}, keys=["problems"])


def test_a_refused_resume_names_the_sampling_setting_that_differs(tmp_path) -> None:
    sampling = {"temperature": 1.0, "top_p": 0.95, "max_new_tokens": 2048}
    with RunStore(tmp_path) as store:
        store.create({**MANIFEST, "sampling": sampling})
    with pytest.raises(StoreError, match=r"with sampling\.temperature=1\.0, not 0\.5: resume"):
        RunStore(tmp_path).resume(
            {**MANIFEST, "sampling": {**sampling, "temperature": 0.5}}, keys=["sampling"]
        )


def test_a_full_disk_is_one_line_naming_the_file_and_keeps_what_was_written(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create(MANIFEST)
        store.add_samples([Sample("p", 0, "a")])
    path = tmp_path / "samples.jsonl"
    kept = path.read_bytes()
    (tmp_path / "full").symlink_to("/dev/full")
    with RunStore(tmp_path) as store:
        store.resume(MANIFEST, keys=["n"])
        store.path = tmp_path / "full"  # the next write goes to a full device
        os.close(store._fd)
        store._fd = os.open(store.path, os.O_WRONLY | os.O_APPEND)
        with pytest.raises(
            StoreWriteError, match=r"full: cannot write \(No space left on device\)$"
        ):
            store.add_samples([Sample("p", 1, "b")])
    assert path.read_bytes() == kept


def test_a_torn_last_line_is_reported_once(tmp_path) -> None:
    with RunStore(tmp_path) as store:
        store.create(MANIFEST)
        store.add_samples([Sample("p", 0, "a"), Sample("p", 1, "b")])
    path = tmp_path / "samples.jsonl"
    path.write_bytes(path.read_bytes()[:-7])
    with RunStore(tmp_path) as store:
        run = store.resume(MANIFEST, keys=["n"])
    assert "samples.jsonl: cut a torn last line (" in run.repaired and "\n" not in run.repaired
    assert set(run.samples) == {("p", 0)}
    with RunStore(tmp_path) as store:
        assert store.resume(MANIFEST, keys=["n"]).repaired == ""


def test_results_on_a_full_disk_name_the_file_and_keep_the_old_one(tmp_path) -> None:
    from harness.results import write_results

    (tmp_path / "results.json").write_text("old\n")
    (tmp_path / "results.json.tmp").symlink_to("/dev/full")
    problem = Problem("p", "test", "", "theorem p : True := by\n")
    run = StoredRun({}, {("p", 0): Sample("p", 0, "x", accepted=True, reason="ok")})
    with pytest.raises(StoreWriteError, match=r"results\.json: cannot write \(No space left"):
        write_results(tmp_path, suite="s", split=None, n=1, ks=[1], problems=[problem], run=run,
                      proof_of=lambda p, c: c, provenance={}, timings={})  # fmt: skip
    assert (tmp_path / "results.json").read_text() == "old\n"
    assert not (tmp_path / "results.json.tmp").exists()
