"""Server settings: one frozen dataclass, shared by the CLI (flag defaults) and the app."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """Everything `longformer2vec serve` can be told; the defaults are the CLI's defaults."""

    model: str
    host: str = "127.0.0.1"
    port: int = 8080
    pooling: str = "mean"
    global_attention: str = "none"
    normalize: bool = False  # /v1/embeddings only; /embed follows its own `normalize` field (default true)
    threads: int | None = None  # ONNX Runtime intra-op threads; None = one per core
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
    graceful_timeout_s: float = 30.0  # on SIGTERM, wait this long for requests in flight
    log_level: str = "info"
    access_log: bool = False

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "max_batch_tokens",
            "max_batch_requests",
            "max_inputs_per_request",
            "max_tokens_per_request",
            "max_queue",
            "max_body_bytes",
        ):
            value = getattr(self, name)
            if value is None and name == "max_batch_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads!r}")
