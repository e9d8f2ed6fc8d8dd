"""Pure ASGI middleware around the routes: request metrics, and the answer to requests that uvicorn
cancels when the graceful shutdown timeout expires."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import ApiError
from .metrics import Metrics

log = logging.getLogger("longformer2vec.serving")

Send = Callable[[dict], Awaitable[None]]


class MetricsMiddleware:
    """Count every HTTP answer by route and status and time it; `route_label` maps a path to its label
    (unknown paths share one label, so scanners cannot grow the metric without bound)."""

    def __init__(self, app: Any, metrics: Metrics, route_label: Callable[[str], str]) -> None:
        self.app = app
        self.metrics = metrics
        self.route_label = route_label

    async def __call__(self, scope: dict, receive: Callable, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.route_label(scope["path"])
        status = 500
        start = time.perf_counter()

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)


class CancelledRequestMiddleware:
    """Answer a request whose task is cancelled before it answered with a 503 in its route's format.

    uvicorn cancels the requests still running when `--graceful-timeout-s` expires; left alone, the
    cancellation reaches uvicorn, which logs a traceback and sends a plain-text 500. Here the request
    gets a JSON 503 (with `Retry-After`: another replica, or this one restarted, can take it) and the
    log one warning line. A queued request's model work is dropped with it (its future is cancelled);
    a model call already running finishes, and the shutdown waits for it before closing the model.
    `reason` says why requests are being cancelled (the shutdown, in practice).
    """

    def __init__(self, app: Any, reason: Callable[[], str], retry_after_s: int) -> None:
        self.app = app
        self.reason = reason
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: dict, receive: Callable, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_track(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_track)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):  # Python >= 3.11
                task.uncancel()
            path = scope["path"]
            if started:  # the answer is already on its way; nothing better to send
                log.warning("%s %s cancelled while answering", scope["method"], path)
                return
            message = self.reason()
            log.warning("%s %s answered 503: %s", scope["method"], path, message)
            error = ApiError(503, message, "unavailable", retry_after=self.retry_after_s)
            await error.response(path)(scope, receive, send)
