"""Dynamic micro-batching: concurrent requests share one model call, each caller gets its own rows back.

Pure Python (threading + concurrent.futures), no web framework, so it is unit-testable on its own.
One worker thread owns the model: ONNX Runtime already spreads one call over every core, so a second
thread would only make calls compete. The worker takes the oldest queued job, then keeps adding jobs
while the merged token count stays within `max_batch_tokens` (TEI's "max batch tokens", counted as
real tokens of the texts), at most `max_batch_requests` jobs, while more keep arriving: each arrival
gives the batch another `max_wait_ms`, up to as long as the last model call took
(:meth:`MicroBatcher._take_batch`). Jobs are never split: a job over the budget runs alone (the
runtime sub-batches it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger("longformer2vec.serving")

# One row per input; the inputs are whatever the encode function takes (the server queues encodings).
EncodeFn = Callable[[list[Any]], np.ndarray]


class QueueFullError(Exception):
    """The bounded queue is full (or the batcher is shutting down): the caller should retry later."""


@dataclass
class BatchStats:
    """What one model call did; handed to the `on_batch` hook (metrics)."""

    requests: int
    inputs: int
    tokens: int
    seconds: float


@dataclass
class _Job:
    inputs: list[Any]
    tokens: int
    future: Future[np.ndarray] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Queue of embedding jobs served by one worker thread that merges them into model calls.

    `submit` is thread-safe and returns a `concurrent.futures.Future` resolving to a float32 array
    [len(inputs), dim] (in the job's own order), or to the exception of that job's model call.
    `capacity` bounds the jobs queued or running; beyond it `submit` raises `QueueFullError`.
    """

    def __init__(
        self,
        encode: EncodeFn,
        *,
        max_batch_tokens: int = 8192,
        max_batch_requests: int = 64,
        max_wait_ms: float = 2.0,
        capacity: int = 256,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_depth: Callable[[int, int], None] | None = None,
    ) -> None:
        for name, value in (
            ("max_batch_tokens", max_batch_tokens),
            ("max_batch_requests", max_batch_requests),
            ("capacity", capacity),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._encode = encode
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self.max_wait = max_wait_ms / 1000.0
        self.capacity = capacity
        self._on_batch = on_batch
        self._on_depth = on_depth
        self._queue: deque[_Job] = deque()
        self._running = 0  # jobs inside the current model call
        self._last_call_s = 0.0  # how long the last model call took: the longest a batch waits to fill
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="longformer2vec-batcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers
    def submit(self, inputs: Sequence[Any], tokens: int) -> Future[np.ndarray]:
        """Queue one request's inputs (already validated); `tokens` is their total token count."""
        job = _Job(list(inputs), int(tokens))
        with self._cond:
            if self._closing:
                raise QueueFullError("server is shutting down")
            if len(self._queue) + self._running >= self.capacity:
                raise QueueFullError(
                    f"queue full: {len(self._queue) + self._running} requests queued or running "
                    f"(max-queue {self.capacity})"
                )
            self._queue.append(job)
            self._report_depth()
            self._cond.notify_all()
        return job.future

    @property
    def depth(self) -> tuple[int, int]:
        """(jobs waiting, jobs waiting or running)."""
        with self._cond:
            return len(self._queue), len(self._queue) + self._running

    def close(self, timeout: float | None = None) -> None:
        """Refuse new jobs, finish every queued one, stop the worker (graceful shutdown)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ worker
    def _report_depth(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._queue), len(self._queue) + self._running)

    def _take_batch(self) -> list[_Job] | None:
        """Block for the first job, then gather more within the token budget while they keep coming.

        The batch closes once `max_wait` passes without a new job (each arrival restarts that wait), and
        at the latest when it has waited as long as the last model call took (at least `max_wait`):
        closed-loop clients answered together come back a few ms apart, and a fixed window from the
        first of them would close on a batch of one and leave the rest for the next call.
        """
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            batch = [self._queue.popleft()]
            tokens = batch[0].tokens
            now = time.monotonic()
            deadline = now + self.max_wait
            cap = now + max(self.max_wait, self._last_call_s)
            while len(batch) < self.max_batch_requests and tokens < self.max_batch_tokens:
                if self._queue:
                    if tokens + self._queue[0].tokens > self.max_batch_tokens:
                        break
                    job = self._queue.popleft()
                    batch.append(job)
                    tokens += job.tokens
                    deadline = min(cap, max(deadline, job.arrived + self.max_wait))
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing:
                    break
                self._cond.wait(remaining)
            # A caller that gave up (cancelled future) costs no model time.
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            self._running = len(batch)
            self._report_depth()
            return batch

    def _loop(self) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                self._run(batch)
            except Exception as exc:  # a bug here must not kill the worker and strand every caller
                log.exception("batch failed")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
            finally:
                with self._cond:
                    self._running = 0
                    self._report_depth()

    def _run(self, batch: list[_Job]) -> None:
        if not batch:
            return
        inputs = [item for job in batch for item in job.inputs]
        start = time.perf_counter()
        try:
            vectors = self._encode(inputs)
            self._last_call_s = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - handed to the caller(s) through their futures
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            # One caller's input must not fail the others: rerun each job alone, fail only the bad one.
            log.warning("merged model call of %d requests failed (%s); retrying each alone", len(batch), exc)
            for job in batch:
                self._run([job])
            return
        if self._on_batch is not None:
            tokens = sum(job.tokens for job in batch)
            try:
                self._on_batch(BatchStats(len(batch), len(inputs), tokens, time.perf_counter() - start))
            except Exception:  # metrics must never lose a caller's result
                log.exception("on_batch hook failed")
        offset = 0
        for job in batch:
            job.future.set_result(vectors[offset : offset + len(job.inputs)])
            offset += len(job.inputs)
