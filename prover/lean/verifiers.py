"""Which verifier a configuration names: a local REPL pool or a server (`--verifier URL`)."""

from __future__ import annotations

import os

from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.remote import RemoteVerifier


def open_verifier(config: VerifierConfig) -> ReplPool | RemoteVerifier:
    """A local pool, or the remote server named by `--verifier`."""
    if config.verifier_url:
        return RemoteVerifier(
            config.verifier_url,
            timeout=config.timeout,
            allow_native=config.allow_native,
            api_key=os.environ.get("PROVER_API_KEY") or None,
            concurrency=config.workers or 8,
            text_scan=config.text_scan,
        )
    return ReplPool(config)
