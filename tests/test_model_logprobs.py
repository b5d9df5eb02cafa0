"""Each sample's log-probability (Completion.logprob): transformers checked against an
independent forward pass, vLLM through a test double of `vllm.LLM`, the OpenAI client against
a local HTTP server that does and does not send log-probabilities."""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

# the fixtures come from test_models; a test's parameter named after one "redefines" it
# ruff: noqa: F811
from test_models import (  # noqa: F401 (fixtures)
    CHAT,
    MATH,
    TINY_PROMPTS,
    FakeOpenAIServer,
    client,
    server,
    smollm2,
    tiny_llama,
)

from prover.models.base import Completion, Prompt, SamplingParams
from prover.models.openai_backend import choice_logprob, logprobs_request, parse_choices
from prover.models.vllm_backend import (
    VLLMBackend,
    reports_raw_logprobs,
    sampling_kwargs,
    to_completions,
)

# --- transformers ------------------------------------------------------------------------------


def sampled_rows(backend: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Records the generated token rows the backend turns into completions, in order."""
    rows: list[list[int]] = []
    original = backend._completion

    def recording(row: list[int], scores: list[float] | None = None) -> Completion:
        rows.append(row)
        return original(row, scores)

    monkeypatch.setattr(backend, "_completion", recording)
    return rows


def forward_logprob(backend: Any, prompt: Prompt, sampled: list[int]) -> float:
    """Sum of log-softmax at `sampled`, from one plain forward pass over prompt + sample (no
    padding, no cache, no sampling code)."""
    import torch

    ids = backend._encode(prompt)
    tokens = torch.tensor([ids + sampled])
    with torch.inference_mode():
        logits = backend._lm(input_ids=tokens).logits[0].float()
    # the logits at position p predict token p + 1
    steps = logits[len(ids) - 1 : len(ids) - 1 + len(sampled)].log_softmax(-1)
    return math.fsum(steps[i, t].item() for i, t in enumerate(sampled))


def check_against_forward_pass(
    backend: Any, prompts: list[Prompt], out: list[list[Completion]], rows: list[list[int]], n: int
) -> list[Completion]:
    flat = [c for group in out for c in group]
    assert len(flat) == len(rows) == len(prompts) * n
    for k, (c, row) in enumerate(zip(flat, rows, strict=True)):
        assert c.logprob is not None and c.logprob_tokens is not None
        stopped = c.finish_reason == "stop"
        assert c.logprob_tokens == c.tokens + (1 if stopped else 0)  # the eos, once
        if stopped:
            assert row[c.tokens] in backend._eos_ids
        expected = forward_logprob(backend, prompts[k // n], row[: c.logprob_tokens])
        assert c.logprob == pytest.approx(expected, abs=1e-4), (k, c)
        assert c.logprob < 0
    return flat


@pytest.fixture
def often_stopping(tiny_llama, monkeypatch: pytest.MonkeyPatch):
    """The tiny random model seldom samples its one eos: a third of the vocabulary ends a
    sample here (models with several eos ids exist), so samples in one batch stop at
    different lengths and padding follows the early ones."""
    vocab = len(tiny_llama.tokenizer)
    monkeypatch.setattr(tiny_llama, "_eos_ids", [*tiny_llama._eos_ids, *range(3, vocab, 3)])
    return tiny_llama


@pytest.mark.parametrize("n", [1, 3])  # 1: plain generate; 3: the prompt encoded once
def test_transformers_logprob_equals_a_forward_pass(
    often_stopping, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """Sampled at temperature 0.7 with top-p 0.9, yet the log-probability is the raw model's:
    the plain log-softmax of a forward pass, padding and the tokens after eos left out."""
    backend = often_stopping
    rows = sampled_rows(backend, monkeypatch)
    params = SamplingParams(
        n=n, temperature=0.7, top_p=0.9, max_new_tokens=10, seed=3, logprobs=True
    )
    flat = check_against_forward_pass(
        backend, TINY_PROMPTS, backend.generate(TINY_PROMPTS, params), rows, n
    )
    if n == 3:
        lengths = {c.logprob_tokens for c in flat}
        assert len(lengths) > 2, lengths  # samples of different lengths in one batch
        assert {c.finish_reason for c in flat} == {"stop", "length"}


def test_transformers_greedy_logprob(often_stopping, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = sampled_rows(often_stopping, monkeypatch)
    params = SamplingParams(n=2, temperature=0, max_new_tokens=10, logprobs=True)
    out = often_stopping.generate(TINY_PROMPTS, params)
    # greedy decodes once per prompt and copies: the copies share the log-probability
    assert all(group[0] == group[1] for group in out)
    check_against_forward_pass(often_stopping, TINY_PROMPTS, [g[:1] for g in out], rows, 1)


def test_transformers_logprob_off_by_default(tiny_llama) -> None:
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=5, seed=0)
    without = tiny_llama.generate(TINY_PROMPTS, params)
    assert all(c.logprob is None and c.logprob_tokens is None for g in without for c in g)
    with_ = tiny_llama.generate(TINY_PROMPTS, SamplingParams(**{**vars(params), "logprobs": True}))
    # asking for log-probabilities changes no sample
    assert [[c.text for c in g] for g in with_] == [[c.text for c in g] for g in without]


@pytest.mark.slow
def test_smollm2_logprob_equals_a_forward_pass(smollm2, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = sampled_rows(smollm2, monkeypatch)
    prompts = [CHAT, Prompt(text="The capital of France is")]
    params = SamplingParams(
        n=2, temperature=0.8, top_p=0.95, max_new_tokens=12, seed=1, logprobs=True
    )
    out = smollm2.generate(prompts, params)
    check_against_forward_pass(smollm2, prompts, out, rows, 2)


# --- vLLM: a test double of vllm.LLM, driven through VLLMBackend ---------------------------------


@dataclass
class FakeLogprob:  # test double of vllm.sequence.Logprob
    logprob: float


@dataclass
class FakeCompletionOutput:  # test double of vllm.CompletionOutput
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    cumulative_logprob: float | None = None
    logprobs: list[dict[int, FakeLogprob]] | None = None
    stop_reason: int | str | None = None


@dataclass
class FakeRequestOutput:  # test double of vllm.RequestOutput
    outputs: list[FakeCompletionOutput]


class FakeSamplingParams:  # test double of vllm.SamplingParams: keeps its keyword arguments
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


V1_ENGINE = type("LLMEngine", (), {"__module__": "vllm.v1.engine.llm_engine"})
V0_ENGINE = type("LLMEngine", (), {"__module__": "vllm.engine.llm_engine"})


@dataclass
class FakeLLM:
    """Test double of `vllm.LLM`: the calls VLLMBackend makes (generate, chat, llm_engine).
    Like vLLM's V1 engine, it fills `cumulative_logprob` and `logprobs` only when the sampling
    parameters ask for `logprobs`; each token's log-probability is -0.5 * (its position + 1)."""

    engine: type = V1_ENGINE
    calls: list[tuple[str, list[Any], dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.llm_engine = self.engine()

    def _answer(self, kind: str, batch: list[Any], sampling: FakeSamplingParams) -> list[Any]:
        self.calls.append((kind, batch, sampling.kwargs))
        want = sampling.kwargs.get("logprobs") is not None
        results = []
        for p, _ in enumerate(batch):
            outputs = []
            for i in range(sampling.kwargs["n"]):
                ids = list(range(10, 10 + p + i + 1)) + [2]  # lengths differ; 2 is eos
                per_token = [-0.5 * (k + 1) for k in range(len(ids))]
                outputs.append(
                    FakeCompletionOutput(
                        i, f"{kind} {p}.{i}", ids, "stop",
                        cumulative_logprob=sum(per_token) if want else None,
                        logprobs=[{t: FakeLogprob(v)} for t, v in zip(ids, per_token, strict=True)]
                        if want else None,
                    )
                )  # fmt: skip
            results.append(FakeRequestOutput(outputs[::-1]))
        return results

    def generate(self, batch: list[str], sampling: FakeSamplingParams, use_tqdm: bool) -> Any:
        return self._answer("text", batch, sampling)

    def chat(self, batch: list[Any], sampling: FakeSamplingParams, use_tqdm: bool) -> Any:
        return self._answer("chat", batch, sampling)


def fake_vllm(monkeypatch: pytest.MonkeyPatch, engine: type = V1_ENGINE) -> FakeLLM:
    llm = FakeLLM(engine)
    module = types.ModuleType("vllm")
    module.LLM = lambda **kwargs: llm  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    module.__version__ = "0.10.0"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return llm


def expected_sum(tokens: int) -> float:
    return sum(-0.5 * (k + 1) for k in range(tokens))


def test_vllm_backend_returns_cumulative_logprob(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = fake_vllm(monkeypatch)
    backend = VLLMBackend("m")
    params = SamplingParams(n=2, temperature=0.6, top_p=0.95, max_new_tokens=32, logprobs=True)
    out = backend.generate([Prompt(text="a"), MATH, Prompt(text="b")], params)
    assert [kwargs["logprobs"] for _, _, kwargs in llm.calls] == [0, 0]
    assert [[c.text for c in g] for g in out] == [
        ["text 0.0", "text 0.1"], ["chat 0.0", "chat 0.1"], ["text 1.0", "text 1.1"]
    ]  # fmt: skip
    for group in out:
        for c in group:
            assert c.logprob_tokens == c.tokens  # vLLM's token_ids hold the eos
            assert c.logprob == pytest.approx(expected_sum(c.tokens))
    assert out[2][1].tokens == 4


def test_vllm_backend_without_logprobs_asks_for_none(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = fake_vllm(monkeypatch)
    out = VLLMBackend("m").generate([Prompt(text="a")], SamplingParams(n=2))
    assert "logprobs" not in llm.calls[0][2]
    assert all(c.logprob is None and c.logprob_tokens is None for c in out[0])


def test_vllm_v0_engine_logprob_only_where_raw(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_vllm(monkeypatch, V0_ENGINE)
    backend = VLLMBackend("m")
    at_one = backend.generate([Prompt(text="a")], SamplingParams(temperature=1.0, logprobs=True))
    assert at_one[0][0].logprob == pytest.approx(expected_sum(2))
    assert capsys.readouterr().err == ""
    for _ in range(2):
        cooled = backend.generate(
            [Prompt(text="a")], SamplingParams(temperature=0.7, logprobs=True)
        )
        assert cooled[0][0].logprob is None and cooled[0][0].logprob_tokens is None
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and "V0 engine" in warnings[0]  # once per backend


def test_vllm_reports_raw_logprobs() -> None:
    v1, v0 = "vllm.v1.engine.llm_engine", "vllm.engine.llm_engine"
    assert reports_raw_logprobs(SamplingParams(temperature=0.7, top_p=0.9), v1)
    assert reports_raw_logprobs(SamplingParams(temperature=0), v0)
    assert reports_raw_logprobs(SamplingParams(temperature=1.0, top_p=1.0), v0)
    assert not reports_raw_logprobs(SamplingParams(temperature=0.7), v0)
    assert not reports_raw_logprobs(SamplingParams(temperature=1.0, top_p=0.95), v0)


def test_vllm_to_completions_sums_token_logprobs_when_no_cumulative() -> None:
    steps = [{5: FakeLogprob(-1.0)}, {6: FakeLogprob(-0.25)}]
    sample = FakeCompletionOutput(0, "x", [5, 6], "length", logprobs=steps)
    (c,) = to_completions(FakeRequestOutput([sample]), logprobs=True)
    assert (c.logprob, c.logprob_tokens) == (-1.25, 2)
    bare = FakeCompletionOutput(0, "x", [5, 6], "length")
    (c,) = to_completions(FakeRequestOutput([bare]), logprobs=True)
    assert (c.logprob, c.logprob_tokens) == (None, None)


def test_vllm_sampling_kwargs_logprobs() -> None:
    assert sampling_kwargs(SamplingParams(logprobs=True))["logprobs"] == 0
    assert "logprobs" not in sampling_kwargs(SamplingParams())


# --- OpenAI-compatible servers ---------------------------------------------------------------


def with_logprobs(fake: FakeOpenAIServer, send: bool) -> None:
    """The fake server answers each choice with per-token log-probabilities in the shape of its
    endpoint (chat: content[].logprob; completions: token_logprobs[]), or with none."""
    plain = fake.reply

    def reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = plain(path, body)
        for choice in data["choices"]:
            values = [-0.25 * (k + 1) for k in range(choice["index"] + 2)]
            if not send:
                choice["logprobs"] = None
            elif path.endswith("/chat/completions"):
                choice["logprobs"] = {
                    "content": [
                        {"token": f"t{k}", "logprob": v, "bytes": [116], "top_logprobs": []}
                        for k, v in enumerate(values)
                    ]
                }
            else:
                choice["logprobs"] = {
                    "tokens": [f"t{k}" for k in range(len(values))],
                    "token_logprobs": values,
                    "top_logprobs": [{} for _ in values],
                    "text_offset": list(range(len(values))),
                }
        return data

    fake.reply = reply  # type: ignore[method-assign]


def test_openai_asks_for_and_sums_logprobs(server: FakeOpenAIServer) -> None:
    with_logprobs(server, send=True)
    params = SamplingParams(n=2, max_new_tokens=8, logprobs=True)
    out = client(server).generate([Prompt(text="theorem a"), MATH], params)
    for group in out:
        assert [c.logprob_tokens for c in group] == [2, 3]
        assert [c.logprob for c in group] == [pytest.approx(-0.75), pytest.approx(-1.5)]
    bodies = {path: body for path, body, _ in server.requests}
    assert bodies["/v1/chat/completions"]["logprobs"] is True
    assert bodies["/v1/chat/completions"]["top_logprobs"] == 1
    assert bodies["/v1/completions"]["logprobs"] == 1
    assert "top_logprobs" not in bodies["/v1/completions"]


def test_openai_without_logprobs_asks_for_none(server: FakeOpenAIServer) -> None:
    with_logprobs(server, send=True)
    out = client(server).generate([Prompt(text="t"), MATH], SamplingParams(n=1))
    assert all(c.logprob is None and c.logprob_tokens is None for g in out for c in g)
    assert all("logprobs" not in body for _, body, _ in server.requests)


def test_openai_server_without_logprobs_warns_once(
    server: FakeOpenAIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_logprobs(server, send=False)
    backend = client(server)
    params = SamplingParams(n=2, logprobs=True)
    for _ in range(2):
        out = backend.generate([Prompt(text="t"), MATH], params)
        assert [[c.text for c in g] for g in out][0] == ["t -> 0 seed=None", "t -> 1 seed=None"]
        assert all(c.logprob is None and c.logprob_tokens is None for g in out for c in g)
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1, warnings
    assert "the server sent no log-probabilities" in warnings[0]


def test_openai_choice_logprob_shapes() -> None:
    assert logprobs_request(chat=True) == {"logprobs": True, "top_logprobs": 1}
    assert logprobs_request(chat=False) == {"logprobs": 1}
    chat = {"logprobs": {"content": [{"logprob": -1.0}, {"logprob": -0.5}]}}
    assert choice_logprob(chat, chat=True) == (-1.5, 2)
    text = {"logprobs": {"token_logprobs": [-2, -0.5]}}
    assert choice_logprob(text, chat=False) == (-2.5, 2)
    for broken in (
        {},
        {"logprobs": None},
        {"logprobs": {"content": None}},
        {"logprobs": {"content": []}},
        {"logprobs": {"content": [{"logprob": None}]}},
        {"logprobs": {"content": [{"token": "x"}]}},
        {"logprobs": {"content": ["not a dict"]}},
    ):
        assert choice_logprob(broken, chat=True) is None, broken
    assert choice_logprob({"logprobs": {"token_logprobs": [None, -1.0]}}, chat=False) is None
    assert choice_logprob({"logprobs": {"token_logprobs": [True]}}, chat=False) is None
    reply = {"choices": [{"index": 0, "text": "x", "logprobs": text["logprobs"]}]}
    (c,) = parse_choices(reply, chat=False, logprobs=True)
    assert (c.logprob, c.logprob_tokens) == (-2.5, 2)
    (c,) = parse_choices(reply, chat=False)  # not asked for: not read
    assert (c.logprob, c.logprob_tokens) == (None, None)
