"""Whether a hub id can be fetched before an export tries: one quick probe instead of the Hugging Face
client's retries, so a name that is neither a directory nor reachable fails in seconds with both
readings named. Standard library only (the runtime has no HTTP client)."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request

PROBE_SECONDS = 4.0  # the whole probe, name resolution included
_TRUE = {"1", "true", "yes", "on"}


def hub_offline(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """``HF_HUB_OFFLINE`` (or transformers' ``TRANSFORMERS_OFFLINE``) set to a true value."""
    return any(
        environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def cached_on_disk(repo_id: str) -> bool:
    """Whether the Hugging Face cache already holds the repository's config (then an offline export
    can read it); False when huggingface_hub is not installed."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - a malformed id or an unreadable cache: not cached
        return False


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def probe(repo_id: str, timeout: float = PROBE_SECONDS) -> str | None:
    """None when the hub answers for ``repo_id``; else why not, in a few words (no such repository,
    refused, unreachable, no answer within ``timeout`` s). One request, no retries; name resolution
    runs in a thread so a hanging resolver cannot hold the caller past ``timeout``."""
    url = f"{_endpoint()}/api/models/{repo_id}"
    headers = {"User-Agent": "longformer2vec"}
    if token := os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    result: list[str | None] = []

    def ask() -> None:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers, method="HEAD"), timeout=timeout
            ):
                result.append(None)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 404):
                result.append(f"the hub has no repository {repo_id!r} (HTTP {exc.code})")
            else:
                result.append(f"the hub answered HTTP {exc.code}")
        except Exception as exc:  # noqa: BLE001 - URLError, OSError, a malformed URL: all "unreachable"
            reason = getattr(exc, "reason", exc)
            result.append(f"the hub ({_endpoint()}) is unreachable: {reason}")

    worker = threading.Thread(target=ask, name="longformer2vec-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        return f"the hub ({_endpoint()}) gave no answer within {timeout:g} s"
    return result[0]


def hub_problem(repo_id: str) -> str | None:
    """Why an export of ``repo_id`` cannot fetch it, or None when it can (offline with a cached copy, or
    the hub answers)."""
    if hub_offline():
        if cached_on_disk(repo_id):
            return None
        return "the Hugging Face hub is off (HF_HUB_OFFLINE) and its cache has no copy"
    return probe(repo_id)
