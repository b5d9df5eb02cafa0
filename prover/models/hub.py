"""Is the model hub reachable? Asked once, quickly, before transformers would ask slowly.

With no local copy of a file, huggingface_hub retries a failed metadata request with backoff
(1, 2, 4, 8, 8 s; `_http_backoff_base` in huggingface_hub/utils/_http.py, called with
`retry_on_errors=True` from `_hf_hub_download_to_cache_dir` in file_download.py), per file, and
transformers asks for several files: about a minute before "couldn't connect". No setting turns
those retries off (HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT bound each attempt, not their
number), so an unreachable hub is found here with one short request and the model is then
loaded from the local cache only (`local_files_only=True`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Long enough for a slow link's TLS handshake; short next to the minute of retries it saves.
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HubStatus:
    """`reachable` False comes with `reason`: why the hub could not be asked (one line)."""

    endpoint: str
    reachable: bool
    reason: str = ""


def is_local(model: str) -> bool:
    """A directory or file on disk: loading it asks no hub."""
    return Path(model).expanduser().exists()


def hub_offline_by_setting() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set: the hub libraries ask nothing anyway."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def probe_hub(timeout_s: float = PROBE_TIMEOUT_S) -> HubStatus:
    """One HEAD request to the hub's endpoint (HF_ENDPOINT), through the same proxies as the hub
    client (httpx reads HTTP(S)_PROXY). Any HTTP answer, even an error status, is reachable."""
    import httpx
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT.rstrip("/")
    try:
        httpx.head(endpoint, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return HubStatus(endpoint, False, f"{type(exc).__name__}: {reason}")
    return HubStatus(endpoint, True)


def local_only(model: str) -> HubStatus | None:
    """None: load `model` as usual. A HubStatus: the hub is unreachable, so load `model` with
    `local_files_only=True` and, if that fails, say why in one line (`unreachable_message`)."""
    if is_local(model) or hub_offline_by_setting():
        return None
    status = probe_hub()
    return None if status.reachable else status


def unreachable_message(model: str, status: HubStatus) -> str:
    return (
        f"cannot load model {model!r}: it is not in the local cache and the model hub "
        f"{status.endpoint} is unreachable ({status.reason}); download it where there is "
        "network, or give --model a local directory or .gguf file"
    )
