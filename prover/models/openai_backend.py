"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs), spoken to with httpx."""

from __future__ import annotations

import email.utils
import math
import re
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from prover.models.base import Completion, Prompt, SamplingParams
from prover.models.errors import ModelBackendError

_RETRY_STATUS = {408, 429}  # plus every 5xx
_MAX_RETRY_AFTER_S = 300.0  # a server asking for longer is treated as down
_WORDS = re.compile(r"\w+|[^\w\s]")


class OpenAIBackend:
    """Text prompts go to `{api_base}/completions`, chat prompts to `{api_base}/chat/completions`.

    `chat=True` sends text prompts as one user message; `chat=False` refuses chat prompts
    (a completions-only server cannot apply the chat template); `None` picks per prompt."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str,
        api_key: str | None = None,
        chat: bool | None = None,
        max_concurrency: int = 8,
        max_retries: int = 6,
        backoff_s: float = 0.5,
        timeout_s: float = 600,
    ) -> None:
        self.model = model
        self.revision: str | None = None
        self.api_base = api_base.rstrip("/")
        self.chat = chat
        self.max_concurrency = max(1, max_concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(
            max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
        )
        self._client = httpx.Client(timeout=timeout_s, headers=headers, limits=limits)
        self._closed = threading.Event()
        self._warned_lock = threading.Lock()
        self._warned_no_logprobs = False

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if not prompts:
            return []
        abort = threading.Event()  # set on the first failure: the other prompts stop retrying
        pool = ThreadPoolExecutor(min(self.max_concurrency, len(prompts)), "openai-backend")
        try:
            futures = [pool.submit(self._sample, p, params, abort) for p in prompts]
            return [f.result() for f in futures]
        except BaseException:
            abort.set()
            raise
        finally:
            pool.shutdown(wait=not abort.is_set(), cancel_futures=True)

    def close(self) -> None:
        self._closed.set()
        self._client.close()

    def _sample(
        self, prompt: Prompt, params: SamplingParams, abort: threading.Event
    ) -> list[Completion]:
        chat, body = self._body(prompt)
        url = f"{self.api_base}/chat/completions" if chat else f"{self.api_base}/completions"
        out: list[Completion] = []
        round_ = 0
        # some servers (llama.cpp) ignore `n` and answer one choice: ask again for the rest
        while len(out) < params.n:
            want = params.n - len(out)
            payload = {
                **body,
                "n": want,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "max_tokens": params.max_new_tokens,
            }
            if params.seed is not None:
                payload["seed"] = params.seed + round_  # a repeated seed would repeat samples
            if params.logprobs:
                payload.update(logprobs_request(chat))
            reply = self._post(url, payload, abort)
            try:
                got = parse_choices(reply, chat=chat, logprobs=params.logprobs)
            except (AttributeError, TypeError, ValueError):
                raise ModelBackendError(
                    f"POST {url}: the reply is not in the OpenAI schema"
                ) from None
            if not got:
                raise ModelBackendError(f"POST {url}: the reply has no choices")
            if params.logprobs and any(c.logprob is None for c in got):
                self._warn_no_logprobs(url)
            out.extend(got[:want])
            round_ += 1
        return out

    def _warn_no_logprobs(self, url: str) -> None:
        with self._warned_lock:
            if self._warned_no_logprobs:
                return
            self._warned_no_logprobs = True
        print(
            f"prover: warning: POST {url}: the server sent no log-probabilities; "
            "samples come without one",
            file=sys.stderr,
        )

    def _body(self, prompt: Prompt) -> tuple[bool, dict[str, Any]]:
        if prompt.messages is not None:
            if self.chat is False:
                raise ModelBackendError(
                    f"{self.model}: chat prompt for a completions-only server (chat=False)"
                )
            return True, {"model": self.model, "messages": list(prompt.messages)}
        if self.chat:
            return True, {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt.text}],
            }
        return False, {"model": self.model, "prompt": prompt.text}

    def _post(self, url: str, payload: dict[str, Any], abort: threading.Event) -> Any:
        problem = "no attempt"
        for attempt in range(self.max_retries + 1):
            if self._closed.is_set():
                raise ModelBackendError(f"{self.model}: the backend was closed")
            if abort.is_set():
                raise ModelBackendError(f"POST {url}: cancelled (another prompt failed)")
            try:
                response = self._client.post(url, json=payload)
            except httpx.ReadTimeout:
                # generation outlived timeout_s: asking again would only wait as long
                raise ModelBackendError(
                    f"POST {url}: no reply within {self.timeout_s:g} s"
                ) from None
            except httpx.TransportError as exc:  # refused, reset, DNS, connect timeout, ...
                problem = f"{type(exc).__name__}: {_one_line(str(exc))}"
                delay = self._backoff(attempt)
            else:
                status = response.status_code
                if status < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise ModelBackendError(f"POST {url}: the reply is not JSON") from None
                problem = f"HTTP {status}: {error_message(response)}"
                if status not in _RETRY_STATUS and status < 500:
                    raise ModelBackendError(f"POST {url}: {problem}")
                delay = retry_after(response)
                if delay is None:
                    delay = self._backoff(attempt)
            if attempt < self.max_retries:
                abort.wait(delay)  # a sleep that ends early when another prompt failed
        tries = self.max_retries + 1
        raise ModelBackendError(f"POST {url}: {problem} (gave up after {tries} attempts)")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2**attempt, 60.0)


def logprobs_request(chat: bool) -> dict[str, Any]:
    """Request fields that make a server return each sampled token's log-probability.

    Chat: `logprobs: true` (OpenAI API reference, chat completions), plus `top_logprobs: 1`:
    vLLM takes 0 for "the sampled token only", but llama.cpp's server copies `top_logprobs`
    (and a completion's `logprobs`) into its `n_probs` (server utils.hpp), where 0 means none.
    Completions: `logprobs` counts alternatives and "the API will always return the logprob of
    the sampled token" (OpenAI API reference, legacy completions); 1, not 0, for that reason.

    What the numbers mean is the server's: vLLM's server reports the raw model's
    (`--logprobs-mode`, default `raw_logprobs`), as Completion.logprob promises."""
    if chat:
        return {"logprobs": True, "top_logprobs": 1}
    return {"logprobs": 1}


def choice_logprob(choice: dict[str, Any], *, chat: bool) -> tuple[float, int] | None:
    """(sum, token count) of a choice's sampled-token log-probabilities: chat replies list them
    as `logprobs.content[].logprob`, completions as `logprobs.token_logprobs[]`. None when the
    server sent none, or a token without one."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return None
    if chat:
        entries = logprobs.get("content")
        values = (
            [e.get("logprob") if isinstance(e, dict) else None for e in entries]
            if isinstance(entries, list)
            else None
        )
    else:
        values = logprobs.get("token_logprobs")
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    return math.fsum(values), len(values)


def parse_choices(data: Any, *, chat: bool, logprobs: bool = False) -> list[Completion]:
    """Completions from one OpenAI-schema reply, in `index` order; with `logprobs`, each one's
    summed log-probability (None where the server sent none)."""
    if not isinstance(data, dict):
        return []
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    usage = data.get("usage") or {}
    total = usage.get("completion_tokens")
    # usage counts all choices together: share it out, the remainder to the first ones
    share: int | None = None
    spare = 0
    if isinstance(total, int) and choices:
        share, spare = divmod(total, len(choices))
    out = []
    for i, choice in enumerate(choices):
        extra: dict[str, object] = {}
        if chat:
            message = choice.get("message") or {}
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:
                extra["reasoning"] = reasoning
        else:
            text = choice.get("text") or ""
        own = (choice.get("usage") or {}).get("completion_tokens")
        if isinstance(own, int):
            tokens = own
        elif share is not None:
            tokens = share + (1 if i < spare else 0)
        else:
            tokens = len(_WORDS.findall(text))  # a rough count: words and punctuation
            extra["tokens_estimated"] = True
        reason = choice.get("finish_reason")
        summed = choice_logprob(choice, chat=chat) if logprobs else None
        out.append(
            Completion(
                text,
                tokens=tokens,
                finish_reason=reason,
                extra=extra,
                logprob=summed[0] if summed else None,
                logprob_tokens=summed[1] if summed else None,
            )
        )
    return out


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a `Retry-After` header asks for (a number or an HTTP date), None if absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def error_message(response: httpx.Response) -> str:
    """The server's own error text, on one line: OpenAI, FastAPI and plain-text shapes."""
    try:
        data = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase
    message: Any = data
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message", data)))
        message = error.get("message", error) if isinstance(error, dict) else error
    return _one_line(str(message))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
