"""Local inference with Hugging Face transformers: CPU or one GPU; hub names, local dirs, GGUF."""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prover.models import gguf_cache, hub
from prover.models.base import Completion, Prompt, SamplingParams
from prover.models.errors import ModelBackendError

_DTYPES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
}


def count_new_tokens(ids: Sequence[int], eos_ids: Iterable[int]) -> tuple[int, str]:
    """Tokens generated before the first eos, and why generation ended ("stop" or "length").

    After a row's eos, `generate` fills it with the pad token (often the eos itself), so
    everything from the first eos on is not part of the completion."""
    eos = set(eos_ids)
    for i, token in enumerate(ids):
        if token in eos:
            return i, "stop"
    return len(ids), "length"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class TransformersBackend:
    """`model` is a hub name or a local directory; `gguf_file` names a GGUF file inside it.

    `batch_size` is the number of prompts per `generate` call to the model; each prompt
    expands to `params.n` sequences, so a batch holds `batch_size * n` rows."""

    def __init__(
        self,
        model: str,
        *,
        gguf_file: str | None = None,
        revision: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
    ) -> None:
        try:  # imported here so that `import prover` stays light
            import torch
            import transformers
        except ImportError:
            raise ModelBackendError(
                "transformers is not installed: pip install 'prover[hf]'"
            ) from None
        self.model = model
        self.revision = revision
        self.batch_size = max(1, batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = _resolve_dtype(torch, dtype, self.device)
        kwargs: dict[str, Any] = {"revision": revision}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        # transformers 4.56 renamed `torch_dtype` to `dtype`; the extra admits older releases
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_kwargs = {("dtype" if (major, minor) >= (4, 56) else "torch_dtype"): torch_dtype}
        local_gguf = _local_gguf(model, gguf_file)
        offline = None if local_gguf else hub.local_only(model)
        if offline is not None:
            kwargs["local_files_only"] = True  # asking the hub would retry for a minute
        try:
            if local_gguf is not None:
                tokenizer, lm, source = _load_gguf(
                    model, local_gguf, kwargs, dtype_kwargs, dtype_name=str(torch_dtype)
                )
            else:
                tokenizer, lm = _from_pretrained(model, kwargs, dtype_kwargs)
                source = model
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            if offline is not None:
                raise ModelBackendError(hub.unreachable_message(model, offline)) from None
            raise ModelBackendError(f"cannot load model {model!r}: {_first_line(exc)}") from None
        self.loaded_from = source  # `model`, its GGUF file, or that file's cached conversion
        self._torch = torch
        self._lm = lm.to(self.device).eval()
        # decoder-only models continue from the last position: pad on the left
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self._eos_ids = _eos_ids(lm.generation_config.eos_token_id, tokenizer.eos_token_id)
        if not self._eos_ids:
            raise ModelBackendError(f"model {model!r} defines no end-of-sequence token")
        self._pad_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self._eos_ids[0]
        )

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if self._lm is None:
            raise ModelBackendError(f"model {self.model!r} was closed")
        if params.seed is not None:
            self._torch.manual_seed(params.seed)  # seeds every device: equal seeds, equal samples
        out: list[list[Completion]] = []
        for start in range(0, len(prompts), self.batch_size):
            out.extend(self._generate_batch(prompts[start : start + self.batch_size], params))
        return out

    def close(self) -> None:
        self._lm = None
        gc.collect()
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def _encode(self, prompt: Prompt) -> list[int]:
        tok = self.tokenizer
        if prompt.messages is not None:
            if not getattr(tok, "chat_template", None):
                raise ModelBackendError(
                    f"model {self.model!r} has no chat template: use a text prompt format"
                )
            text = tok.apply_chat_template(
                list(prompt.messages), add_generation_prompt=True, tokenize=False
            )
            # the template already wrote any BOS it wants
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(prompt.text)["input_ids"]
        if not ids:
            raise ModelBackendError("empty prompt: nothing to continue")
        return list(ids)

    def _generate_batch(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[list[Completion]]:
        torch = self._torch
        encoded = [self._encode(p) for p in prompts]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        greedy = params.temperature <= 0
        # greedy rows would all be equal: decode once, copy n times (generate refuses n > 1)
        per_prompt = 1 if greedy else params.n
        options: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self._pad_id,
            "eos_token_id": self._eos_ids,
            "num_return_sequences": per_prompt,
        }
        if greedy:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            # top_k=0 overrides a top_k from the model's generation config (50 by default)
            options.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            options["top_k"] = 0
        if params.logprobs:
            # `logits` holds every step's raw logits, `scores` the processed ones (temperature,
            # top-p): "Unprocessed prediction scores of the language modeling head" (transformers
            # docs, GenerateDecoderOnlyOutput). Raw is what Completion.logprob reports.
            options.update(output_logits=True, return_dict_in_generate=True)
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        with torch.inference_mode():
            if per_prompt > 1 and width > 1:
                generated = self._generate_shared_prompt(input_ids, attention, per_prompt, options)
            else:
                generated = self._lm.generate(
                    input_ids=input_ids, attention_mask=attention, **options
                )
            sequences = generated.sequences if params.logprobs else generated
            new_tokens = sequences[:, width:]
            scores = token_logprobs(generated.logits, new_tokens) if params.logprobs else None
        rows = new_tokens.tolist()
        out = []
        for i in range(len(prompts)):
            picked = range(i * per_prompt, (i + 1) * per_prompt)
            group = [self._completion(rows[r], scores[r] if scores else None) for r in picked]
            out.append(group * params.n if greedy else group)
        return out

    def _generate_shared_prompt(
        self, input_ids: Any, attention: Any, n: int, options: dict[str, Any]
    ) -> Any:
        """n samples per prompt with the prompt encoded once: `generate` would copy each prompt
        n times before the forward pass, which on a CPU costs more than decoding short answers.
        The prompt (but its last token) fills a KV cache that is then repeated n times; the
        samples are the same as without sharing (the tests compare them, seed for seed)."""
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self._lm.config)
        except TypeError:  # transformers before 4.56
            cache = DynamicCache()
        key = self._cache_key
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # as generate numbers left padding
        self._lm(
            input_ids=input_ids[:, :-1],
            attention_mask=attention[:, :-1],
            position_ids=positions[:, :-1],
            use_cache=True,
            **{key: cache},
            **self._last_logits_only,
        )
        cache.batch_repeat_interleave(n)
        shared = {**options, "num_return_sequences": 1, key: cache}
        return self._lm.generate(
            input_ids=input_ids.repeat_interleave(n, 0),
            attention_mask=attention.repeat_interleave(n, 0),
            **shared,
        )

    @property
    def _last_logits_only(self) -> dict[str, int]:
        """The prompt pass only fills the cache: its logits (prompt length x vocabulary per row,
        hundreds of MB for a long prompt) are never read. transformers 4.50 renamed the option
        (`num_logits_to_keep` before); a model with neither computes them all."""
        import inspect

        parameters = inspect.signature(self._lm.forward).parameters
        for name in ("logits_to_keep", "num_logits_to_keep"):
            if name in parameters:
                return {name: 1}
        return {}

    @property
    def _cache_key(self) -> str:
        # transformers 5 renamed `past_key_values` to `cache` (the old name warns, then goes)
        import inspect

        return (
            "cache"
            if "cache" in inspect.signature(self._lm.forward).parameters
            else ("past_key_values")
        )

    def _completion(self, row: list[int], scores: list[float] | None = None) -> Completion:
        tokens, reason = count_new_tokens(row, self._eos_ids)
        text = self.tokenizer.decode(row[:tokens], skip_special_tokens=True)
        if scores is None:
            return Completion(text, tokens=tokens, finish_reason=reason)
        # the eos that ended the sample was sampled too: it counts, the padding after it not
        counted = tokens + 1 if reason == "stop" else tokens
        return Completion(
            text,
            tokens=tokens,
            finish_reason=reason,
            logprob=math.fsum(scores[:counted]),
            logprob_tokens=counted,
        )


def token_logprobs(logits: Sequence[Any], tokens: Any) -> list[list[float]]:
    """Per row, the log-softmax of each step's raw logits at the token sampled at that step.

    What `compute_transition_scores(sequences, logits, normalize_logits=True)` gives (transformers
    docs, "Utilities for Generation"), one step at a time: no (rows, steps, vocabulary) stack in
    memory, and no reliance on the config's vocabulary size matching the logits' width."""
    columns = [
        step.float().log_softmax(-1).gather(1, tokens[:, i : i + 1])
        for i, step in enumerate(logits)
    ]
    if not columns:
        return [[] for _ in range(tokens.shape[0])]
    import torch

    return torch.cat(columns, 1).tolist()


def _from_pretrained(
    source: str, kwargs: dict[str, Any], model_kwargs: dict[str, Any]
) -> tuple[Any, Any]:
    """(tokenizer, model) of a hub name or local directory."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
    lm = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs, **model_kwargs)
    return tokenizer, lm


def _local_gguf(model: str, gguf_file: str | None) -> Path | None:
    """The GGUF file on disk that `model` and `gguf_file` name (None for a hub repository)."""
    if not gguf_file:
        return None
    path = Path(model).expanduser() / gguf_file
    return path if path.is_file() else None


def _load_gguf(
    folder: str,
    gguf: Path,
    kwargs: dict[str, Any],
    model_kwargs: dict[str, Any],
    *,
    dtype_name: str,
) -> tuple[Any, Any, str]:
    """A local GGUF file's (tokenizer, model, where they were read): from the conversion cache
    when it holds them, else converted (slow) and then cached. The cache is a speed-up: when
    it cannot be read or written, the model still loads from the GGUF file."""
    key = gguf_cache.EntryKey.of(gguf, dtype_name)
    entry = gguf_cache.lookup(key)
    if entry is not None:
        try:
            return (*_from_pretrained(str(entry), {}, model_kwargs), str(entry))
        except (OSError, ValueError, RuntimeError) as exc:
            _warn(f"the cached conversion {entry} does not load ({_first_line(exc)}): "
                  "converting the GGUF file again")  # fmt: skip
            gguf_cache.discard(entry)
    tokenizer, lm = _from_pretrained(folder, kwargs, model_kwargs)
    try:
        stored = gguf_cache.store(key, lambda target: _save_converted(tokenizer, lm, target))
    except (OSError, ValueError, RuntimeError) as exc:
        _warn(f"cannot cache the converted {gguf.name} ({_first_line(exc)}): the next load "
              "converts it again")  # fmt: skip
    else:
        print(f"prover: {gguf.name} converted once, cached in {stored}", file=sys.stderr)
    return tokenizer, lm, str(gguf)


def _save_converted(tokenizer: Any, lm: Any, target: Path) -> None:
    # The dequantized model stays marked as GGUF-quantized, which save_pretrained refuses; the
    # weights in memory are plain tensors (the same removal as training/train_run.load_model).
    quantizer = getattr(lm, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(lm)
    lm.save_pretrained(target)  # safetensors: the default since transformers 4.35
    tokenizer.save_pretrained(target)


def _warn(message: str) -> None:
    print(f"prover: warning: {message}", file=sys.stderr)


def _resolve_dtype(torch: Any, dtype: str | None, device: str) -> Any:
    if dtype is None or dtype == "auto":
        # bf16 halves memory where the GPU computes it natively; CPUs get exact float32
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    name = _DTYPES.get(dtype.lower())
    if name is None:
        known = ", ".join(sorted(_DTYPES))
        raise ModelBackendError(f"unknown dtype {dtype!r}; choose one of: auto, {known}")
    return getattr(torch, name)


def _eos_ids(*sources: int | list[int] | None) -> list[int]:
    ids: list[int] = []
    for source in sources:
        for token in source if isinstance(source, list) else [source]:
            if token is not None and token not in ids:
                ids.append(int(token))
    return ids
