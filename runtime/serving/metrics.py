"""Prometheus metrics, in a registry per app so two apps in one process (tests) never share counters."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from .batcher import BatchStats

PREFIX = "longformer2vec"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BATCH_TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


class Metrics:
    """Requests by route and status, latency, batch shape, queue depth."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests", "HTTP requests by route and status code", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from request received to response sent, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            f"{PREFIX}_batch_requests",
            "Requests merged into one model call",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size", "Texts per model call", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            f"{PREFIX}_batch_tokens", "Tokens per model call", buckets=BATCH_TOKEN_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_duration_seconds", "Model call time", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Requests waiting for the model (not yet in a model call)", registry=r
        )
        self.in_flight = Gauge(
            f"{PREFIX}_requests_in_model",
            "Requests queued or inside the current model call (bounded by --max-queue)",
            registry=r,
        )
        self.model_loaded = Gauge(f"{PREFIX}_model_loaded", "1 once the model is loaded", registry=r)

    def observe_batch(self, stats: BatchStats) -> None:
        self.batch_requests.observe(stats.requests)
        self.batch_size.observe(stats.inputs)
        self.batch_tokens.observe(stats.tokens)
        self.batch_seconds.observe(stats.seconds)

    def set_depth(self, waiting: int, total: int) -> None:
        self.queue_depth.set(waiting)
        self.in_flight.set(total)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) for GET /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
