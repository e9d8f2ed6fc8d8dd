"""The HTTP app: OpenAI `/v1/embeddings`, TEI `/embed`, `/health`, `/metrics`, and `serve()` (uvicorn).

Request bodies are parsed by hand rather than by pydantic models so every error says, in the route's
own error format, which field or limit was wrong and what the limit is. Each request is validated and
tokenized on its own before it is queued; only valid requests reach the shared micro-batcher, so one
bad request never touches another caller's result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..common import normalize as l2_normalize
from ..encoder import Longformer2Vec
from ..errors import Longformer2VecError
from .batcher import MicroBatcher, QueueFullError
from .config import ServeConfig
from .metrics import Metrics
from .tokens import prepare_encodings

log = logging.getLogger("longformer2vec.serving")

OPENAI_ROUTE = "/v1/embeddings"
TEI_ROUTE = "/embed"
ROUTES = (OPENAI_ROUTE, TEI_ROUTE, "/health", "/metrics")

# error kind -> (OpenAI `type`, TEI `error_type`)
ERROR_TYPES = {
    "validation": ("invalid_request_error", "Validation"),
    "too_large": ("invalid_request_error", "Validation"),
    "overloaded": ("server_overloaded", "Overloaded"),
    "unavailable": ("service_unavailable", "Unhealthy"),
    "internal": ("server_error", "Backend"),
}


class ApiError(Exception):
    """An error answer: HTTP status, a message naming the field or limit, and an error kind."""

    def __init__(self, status: int, message: str, kind: str = "validation", retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.retry_after = retry_after

    def response(self, route: str) -> JSONResponse:
        openai_type, tei_type = ERROR_TYPES[self.kind]
        if route == OPENAI_ROUTE:
            body: Any = {"error": {"message": self.message, "type": openai_type, "param": None, "code": None}}
        else:
            body = {"error": self.message, "error_type": tei_type}
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass
class ServerState:
    """What the routes share: settings, metrics, and (once loaded) the model and its batcher."""

    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
    model: Longformer2Vec | None = None
    batcher: MicroBatcher | None = None
    load_error: str | None = None
    on_load_error: Callable[[], None] | None = None


def load_model(config: ServeConfig) -> Longformer2Vec:
    """The model as the Python API builds it; normalisation is applied per request, not here."""
    return Longformer2Vec(
        config.model,
        pooling=config.pooling,
        global_attention=config.global_attention,
        normalize=False,
        intra_op_num_threads=config.threads,
        batch_size=config.batch_size,
        max_batch_tokens=config.max_batch_tokens,
    )


# ------------------------------------------------------------------------- request parsing
def _type_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _texts(body: dict[str, Any], name: str) -> list[str]:
    """`name` as a list of strings: a string or a non-empty list of strings; token ids are refused."""
    if name not in body:
        raise ApiError(422, f"'{name}' is required: a string or a list of strings")
    value = body[name]
    if isinstance(value, str):
        _check_unicode(value, name)
        return [value]
    if not isinstance(value, list):
        raise ApiError(422, f"'{name}' must be a string or a list of strings, got {_type_name(value)}")
    if not value:
        raise ApiError(422, f"'{name}' must not be an empty list")
    for i, item in enumerate(value):
        if isinstance(item, str):
            _check_unicode(item, f"{name}[{i}]")
            continue
        is_ids = (isinstance(item, int) and not isinstance(item, bool)) or (
            isinstance(item, list) and item and all(isinstance(x, int) for x in item)
        )
        if is_ids:
            raise ApiError(
                422, f"'{name}' holds token ids; only text is supported (a string or list of strings)"
            )
        raise ApiError(422, f"'{name}[{i}]' must be a string, got {_type_name(item)}")
    return list(value)


def _check_unicode(text: str, where: str) -> None:
    """JSON escapes can spell a lone surrogate (`"\\ud800"`), which is no text the tokenizer can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, f"'{where}' is not valid Unicode (a lone surrogate escape)") from None


def _optional(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        wanted = "an integer" if kind is int else f"a {_type_name(kind())}"
        raise ApiError(422, f"'{name}' must be {wanted}, got {_type_name(value)}")
    return value


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 past `limit` bytes (checked while reading), 422 if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is {declared} bytes, over max-body-bytes {limit}", "too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is over max-body-bytes {limit}", "too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer past Python's digit limit
        raise ApiError(422, f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # arrays or objects nested thousands deep: a client's input, not a server bug
        raise ApiError(422, "request body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(422, f"request body must be a JSON object, got {_type_name(body)}")
    return body


# ------------------------------------------------------------------------- embedding core
@dataclass
class Embedded:
    vectors: np.ndarray
    tokens: int


async def _embed(
    state: ServerState, texts: list[str], *, truncate: bool = False, direction: str = "right"
) -> Embedded:
    """Check the per-request limits, tokenize, queue, await this request's own rows."""
    cfg = state.config
    model, batcher = state.model, state.batcher
    if model is None or batcher is None:
        raise ApiError(503, "model is loading", "unavailable", retry_after=cfg.retry_after_s)
    if len(texts) > cfg.max_inputs_per_request:
        raise ApiError(
            413,
            f"{len(texts)} inputs in one request, over max-inputs-per-request {cfg.max_inputs_per_request}",
            "too_large",
        )
    try:
        encodings = await asyncio.to_thread(
            prepare_encodings, model.tokenizer, texts, model.max_length, truncate, direction
        )
    except Exception as exc:  # tokenizer failures belong to this request only
        raise ApiError(422, f"could not tokenize the input: {exc}") from exc
    total = sum(len(enc.ids) for enc in encodings)
    if total > cfg.max_tokens_per_request:
        raise ApiError(
            413,
            f"{total} tokens in one request, over max-tokens-per-request {cfg.max_tokens_per_request}",
            "too_large",
        )
    try:
        future = batcher.submit(encodings, total)
    except QueueFullError as exc:
        raise ApiError(503, str(exc), "overloaded", retry_after=cfg.retry_after_s) from None
    try:
        vectors = await asyncio.wrap_future(future)
    except Exception as exc:
        log.exception("model call failed")
        raise ApiError(500, f"model call failed: {type(exc).__name__}: {exc}", "internal") from exc
    return Embedded(vectors, total)


# ------------------------------------------------------------------------- app
class _MetricsMiddleware:
    """Pure ASGI middleware: count every HTTP answer by route and status and time it."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
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


def create_app(
    config: ServeConfig, *, model_factory: Callable[[ServeConfig], Longformer2Vec] = load_model
) -> FastAPI:
    """The ASGI app. The model loads in a background thread at startup, so /health can say 'loading'."""
    state = ServerState(config)

    def load() -> None:
        try:
            model = model_factory(config)
            state.batcher = MicroBatcher(
                model.encode_encodings,  # the encodings _embed made: each request is tokenized once
                max_batch_tokens=model.max_batch_tokens,  # the flag's value, or the device's default
                max_batch_requests=config.max_batch_requests,
                max_wait_ms=config.max_wait_ms,
                capacity=config.max_queue,
                on_batch=state.metrics.observe_batch,
                on_depth=state.metrics.set_depth,
            )
            state.model = model
            state.metrics.model_loaded.set(1)
            log.info(
                "model %s loaded from %s (providers %s)",
                model.manifest.model_id,
                model.model_dir,
                model.providers,
            )
        except Exception as exc:
            state.load_error = f"{type(exc).__name__}: {exc}"
            # Library errors (missing dir, bad manifest) are one line; anything else is a bug: traceback.
            log.error(
                "could not load model %s: %s",
                config.model,
                state.load_error,
                exc_info=not isinstance(exc, Longformer2VecError),
            )
            if state.on_load_error is not None:
                state.on_load_error()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loader = threading.Thread(target=load, name="longformer2vec-load", daemon=True)
        loader.start()
        yield
        # uvicorn has already waited for the requests in flight; finish anything still queued.
        if state.batcher is not None:
            await asyncio.to_thread(state.batcher.close)
        state.model = None

    app = FastAPI(title="longformer2vec", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.serving = state
    app.add_middleware(_MetricsMiddleware, metrics=state.metrics)

    @app.post(OPENAI_ROUTE)
    async def openai_embeddings(request: Request) -> Response:
        try:
            body = await _read_json(request, config.max_body_bytes)
            texts = _texts(body, "input")
            _optional(body, "model", str, None)
            encoding = _optional(body, "encoding_format", str, "float")
            if encoding not in ("float", "base64"):
                raise ApiError(422, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}")
            dimensions = _optional(body, "dimensions", int, None)
            model = state.model
            if dimensions is not None and model is not None and dimensions != model.vector_length:
                raise ApiError(
                    422,
                    f"'dimensions' must be {model.vector_length} (this model's vector length) or omitted; "
                    "shortening vectors is not supported",
                )
            result = await _embed(state, texts)
        except ApiError as err:
            return err.response(OPENAI_ROUTE)
        vectors = l2_normalize(result.vectors) if config.normalize else result.vectors
        if encoding == "base64":
            items: list[Any] = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
        else:
            items = vectors.tolist()
        assert state.model is not None
        return JSONResponse(
            {
                "object": "list",
                "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(items)],
                "model": state.model.manifest.model_id,
                "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
            }
        )

    @app.post(TEI_ROUTE)
    async def tei_embed(request: Request) -> Response:
        try:
            body = await _read_json(request, config.max_body_bytes)
            texts = _texts(body, "inputs")
            normalize = _optional(body, "normalize", bool, True)
            truncate = _optional(body, "truncate", bool, False)
            direction = _optional(body, "truncation_direction", str, "right").lower()
            if direction not in ("right", "left"):
                raise ApiError(422, f"'truncation_direction' must be 'right' or 'left', got {direction!r}")
            if body.get("prompt_name") is not None:
                raise ApiError(422, "'prompt_name' is not supported: this model has no prompts")
            result = await _embed(state, texts, truncate=truncate, direction=direction)
        except ApiError as err:
            return err.response(TEI_ROUTE)
        vectors = l2_normalize(result.vectors) if normalize else result.vectors
        return JSONResponse(vectors.tolist(), headers={"x-prompt-tokens": str(result.tokens)})

    @app.get("/health")
    async def health() -> Response:
        if state.model is not None:
            model = state.model
            return JSONResponse(
                {"status": "ok", "model": model.manifest.model_id, "providers": model.providers}
            )
        if state.load_error is not None:
            return JSONResponse({"status": "error", "error": state.load_error}, status_code=503)
        return JSONResponse(
            {"status": "loading"}, status_code=503, headers={"Retry-After": str(config.retry_after_s)}
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    return app


def serve(config: ServeConfig) -> int:
    """Run the server until SIGINT/SIGTERM (then finish requests in flight); 1 if the model fails to load."""
    import uvicorn

    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=config.access_log,
            timeout_graceful_shutdown=config.graceful_timeout_s,
            lifespan="on",
        )
    )
    state: ServerState = app.state.serving

    def stop() -> None:
        server.should_exit = True

    state.on_load_error = stop
    server.run()
    if state.load_error is not None:
        print(f"error: could not load model {config.model}: {state.load_error}", file=sys.stderr, flush=True)
        return 1
    return 0
