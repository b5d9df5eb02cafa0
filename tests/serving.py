"""Run a real `prover serve` app (uvicorn, real sockets) in a thread, for tests."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn

from prover.lean.pool import ReplPool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def running_server(pool_factory: Callable[[], ReplPool], **app_options: object) -> Iterator[str]:
    from prover.server.app import create_app

    with serving(create_app(pool_factory, **app_options)) as url:  # type: ignore[arg-type]
        yield url


class ScriptedOpenAI:
    """A test double of an OpenAI-compatible model server (no model can be served here):
    `/v1/completions` answers each prompt with the scripted completions of the first theorem
    name found in it (else of the first key that is a substring of it), cycling through them
    from the first for every request. Every request body is logged in `requests`; `delay_s`
    slows each answer. When a request asks for `logprobs`, a choice whose text `logprobs`
    lists gets that log-probability (as one token's, in the completions schema)."""

    def __init__(
        self,
        answers: dict[str, list[str]],
        *,
        default: str = "  sorry\n```",
        delay_s: float = 0,
        logprobs: dict[str, float] | None = None,
    ) -> None:
        self.answers = answers
        self.default = default
        self.delay_s = delay_s
        self.logprobs = logprobs or {}
        self.requests: list[dict] = []

    def app(self):  # noqa: ANN201 (FastAPI is imported lazily)
        import asyncio

        from fastapi import FastAPI

        app = FastAPI()

        @app.post("/v1/completions")
        async def completions(body: dict) -> dict:
            self.requests.append(body)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            prompt = body["prompt"]
            name = next((n for n in self.answers if _declares(prompt, n)), None) or next(
                (n for n in self.answers if n in prompt), None
            )
            texts = self.answers.get(name, [self.default]) if name else [self.default]
            choices = [
                {"index": i, "text": texts[i % len(texts)], "finish_reason": "stop"}
                for i in range(body.get("n", 1))
            ]
            if body.get("logprobs"):
                for choice in choices:
                    if choice["text"] in self.logprobs:
                        choice["logprobs"] = {
                            "tokens": [choice["text"]],
                            "token_logprobs": [self.logprobs[choice["text"]]],
                        }
            return {
                "id": "x",
                "object": "text_completion",
                "model": body["model"],
                "choices": choices,
                "usage": {"completion_tokens": 3 * len(choices)},
            }

        return app


@contextlib.contextmanager
def scripted_openai(model: ScriptedOpenAI) -> Iterator[str]:
    """Serve `model` on a free port; yields the API base URL (`http://127.0.0.1:PORT/v1`)."""
    with serving(model.app()) as url:
        yield f"{url}/v1"


def _declares(prompt: str, name: str) -> bool:
    return re.search(rf"theorem {re.escape(name)}(?![\w.'])", prompt) is not None
