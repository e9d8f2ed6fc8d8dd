"""Server settings: one frozen dataclass, shared by the CLI (flag defaults) and the app.

Errors name the command-line flag (`--max-queue must be ...`), since that is what a user typed; the
CLI prints them as one `error:` line and exits 2 before anything starts.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..options import ModelOptions, OptionError

API_KEY_ENV = "LONGFORMER2VEC_API_KEY"
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + string.punctuation)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def api_key_from(flag_value: str | None, environ: Mapping[str, str]) -> str | None:
    """The API key: the `--api-key` flag if given, else `LONGFORMER2VEC_API_KEY` (an empty variable
    counts as unset), else None (no key: every route is open)."""
    if flag_value is not None:
        return flag_value
    return environ.get(API_KEY_ENV) or None


@dataclass(frozen=True)
class ServeConfig:
    """Everything `longformer2vec serve` can be told; the defaults are the CLI's defaults."""

    model: str
    # The model's name in the API (`/v1/models`, responses' `model`, `/info`); None: the hub id for hub
    # models, else the export directory's name (never a local path).
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    precision: str | None = None  # the directory's graph to run; None = the runtime's default
    pooling: str = "mean"
    global_attention: str = "none"
    normalize: bool = False  # /v1/embeddings only; /embed follows its own `normalize` field (default true)
    threads: int | None = None  # ONNX Runtime intra-op threads; None = one per core
    # Off: the event loop and the tokenizer threads share the cores with the model's threads, which
    # would otherwise busy-wait between operators and take the CPU they need.
    spin: bool = False
    batch_size: int = 8  # rows per ONNX call inside one merged model call (the runtime default)
    # merge budget (real tokens) and the runtime's padded tokens per ONNX call; None = the runtime's
    # default for the device it runs on (2048 on the CPU, 8192 on a GPU)
    max_batch_tokens: int | None = None
    max_batch_requests: int = 64  # requests merged into one model call; 1 = no micro-batching
    max_wait_ms: float = 2.0  # how long a batch waits for more requests once one is waiting
    max_inputs_per_request: int = 256
    max_tokens_per_request: int = 65536
    max_queue: int = 256  # requests queued or in the model call; the next one gets 503 + Retry-After
    max_body_bytes: int = 8 * 1024 * 1024
    retry_after_s: int = 1
    graceful_timeout_s: float = 30.0  # on SIGTERM, wait this long for requests in flight, then answer 503
    log_level: str = "info"
    access_log: bool = False
    # Bearer key every route but /health needs (and /metrics only with metrics_require_key); None = open.
    # Kept out of repr so a logged config never shows it.
    api_key: str | None = field(default=None, repr=False)
    metrics_require_key: bool = False

    def model_options(self) -> ModelOptions:
        """The model's options (:class:`ModelOptions`): the fields this config shares with it."""
        shared = {f.name for f in fields(ModelOptions)} & {f.name for f in fields(self)}
        return ModelOptions(**{name: getattr(self, name) for name in shared})

    def __post_init__(self) -> None:
        try:
            self.model_options()  # the model's options are checked where the API checks them
        except OptionError as exc:
            raise ValueError(exc.flag()) from None
        for name in (
            "max_batch_requests",
            "max_inputs_per_request",
            "max_tokens_per_request",
            "max_queue",
            "max_body_bytes",
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{_flag(name)} must be an integer >= 1, got {value!r}")
        if not _is_int(self.port) or not 1 <= self.port <= 65535:
            raise ValueError(f"--port must be an integer from 1 to 65535, got {self.port!r}")
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(f"--host must be an address or a host name, got {self.host!r}")
        if not _is_int(self.retry_after_s) or self.retry_after_s < 0:
            raise ValueError(f"--retry-after-s must be an integer >= 0, got {self.retry_after_s!r}")
        for name in ("max_wait_ms", "graceful_timeout_s"):
            value = getattr(self, name)
            if (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0:
                continue
            raise ValueError(f"{_flag(name)} must be a finite number >= 0, got {value!r}")
        if self.served_model_name is not None and (
            not self.served_model_name.strip() or self.served_model_name != self.served_model_name.strip()
        ):
            raise ValueError(
                f"--served-model-name must be a non-empty name without surrounding spaces, "
                f"got {self.served_model_name!r}"
            )
        if self.api_key is not None:
            where = f"the API key (--api-key or {API_KEY_ENV})"
            if not self.api_key:
                raise ValueError(f"{where} must not be empty")
            if not set(self.api_key) <= _KEY_CHARS:
                raise ValueError(
                    f"{where} must be printable ASCII without spaces: it travels in an HTTP header"
                )
        if self.metrics_require_key and self.api_key is None:
            raise ValueError(f"--metrics-require-key needs a key: --api-key or {API_KEY_ENV}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
