"""The HTTP app: OpenAI `/v1/embeddings` and `/v1/models`, TEI `/embed` and `/info`, `/health`,
`/metrics`, and `serve()` (uvicorn).

Each request is validated (`parsing`) and tokenized on its own before it is queued; only valid
requests reach the shared micro-batcher, so one bad request never touches another caller's result.
Errors answer in the route's own format (`errors`); with an API key set, `auth` checks it first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..common import normalize as l2_normalize
from ..encoder import Longformer2Vec
from ..errors import Longformer2VecError
from .auth import ApiKeyMiddleware
from .batcher import MicroBatcher, QueueFullError
from .config import API_KEY_ENV, ServeConfig
from .errors import ApiError
from .info import model_card, model_list, tei_info
from .listen import ListenError, bind_socket, is_loopback
from .metrics import Metrics
from .middleware import CancelledRequestMiddleware, MetricsMiddleware
from .parsing import optional_field, read_json, texts_field
from .tokens import prepare_encodings

log = logging.getLogger("longformer2vec.serving")

OPENAI_ROUTE = "/v1/embeddings"
MODELS_ROUTE = "/v1/models"
TEI_ROUTE = "/embed"
INFO_ROUTE = "/info"
HEALTH_ROUTE = "/health"
METRICS_ROUTE = "/metrics"
ROUTES = (OPENAI_ROUTE, MODELS_ROUTE, TEI_ROUTE, INFO_ROUTE, HEALTH_ROUTE, METRICS_ROUTE)
# asyncio's default executor size: tokenization runs on as many threads as asyncio.to_thread would use
TOKENIZATION_WORKERS = min(32, (os.cpu_count() or 1) + 4)


def route_label(path: str) -> str:
    """The metrics label of a request path: the route, or "other" for a path no route serves."""
    if path in ROUTES:
        return path
    if path.startswith(MODELS_ROUTE + "/"):
        return MODELS_ROUTE + "/{model}"
    return "other"


@dataclass
class ServerState:
    """What the routes share: settings, metrics, and (once loaded) the model and its batcher."""

    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
    model: Longformer2Vec | None = None
    batcher: MicroBatcher | None = None
    load_error: str | None = None
    on_load_error: Callable[[], None] | None = None
    stopping: Callable[[], bool] = lambda: False  # whether the server is shutting down (serve() sets it)
    tokenizer_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            TOKENIZATION_WORKERS, thread_name_prefix="longformer2vec-tok"
        )
    )


def load_model(config: ServeConfig) -> Longformer2Vec:
    """The model as the Python API builds it; normalisation is applied per request, not here."""
    options = dataclasses.replace(config.model_options(), normalize=False)  # normalized per request
    return Longformer2Vec.from_options(options)


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
        encodings = await asyncio.get_running_loop().run_in_executor(
            state.tokenizer_pool,
            prepare_encodings,
            model.tokenizer,
            texts,
            model.max_length,
            truncate,
            direction,
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
        # uvicorn has waited for the requests in flight (and answered 503 to those still running when
        # the graceful timeout expired, whose queued work is then dropped). A model call already
        # running cannot be interrupted: wait for it before the model goes.
        if state.batcher is not None:
            if state.batcher.depth[1]:
                log.info("waiting for the model call in progress to finish")
            await asyncio.to_thread(state.batcher.close)
        state.tokenizer_pool.shutdown(wait=False, cancel_futures=True)
        state.model = None

    def cancelled_reason() -> str:
        if state.stopping():
            return (
                f"the server is shutting down and its graceful timeout ({config.graceful_timeout_s:g} s) "
                "expired before this request finished"
            )
        return "the request was cancelled before it finished"

    app = FastAPI(title="longformer2vec", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.serving = state
    # Added innermost first: metrics (outermost) count every answer, 401s and shutdown 503s included.
    if config.api_key is not None:
        open_paths = {HEALTH_ROUTE} if config.metrics_require_key else {HEALTH_ROUTE, METRICS_ROUTE}
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key, open_paths=open_paths)
    app.add_middleware(
        CancelledRequestMiddleware, reason=cancelled_reason, retry_after_s=config.retry_after_s
    )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, route_label=route_label)

    def loaded_model() -> Longformer2Vec:
        if state.model is None:
            raise ApiError(503, "model is loading", "unavailable", retry_after=config.retry_after_s)
        return state.model

    @app.post(OPENAI_ROUTE)
    async def openai_embeddings(request: Request) -> Response:
        try:
            body = await read_json(request, config.max_body_bytes)
            texts = texts_field(body, "input")
            optional_field(body, "model", str, None)
            encoding = optional_field(body, "encoding_format", str, "float")
            if encoding not in ("float", "base64"):
                raise ApiError(422, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}")
            dimensions = optional_field(body, "dimensions", int, None)
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
            body = await read_json(request, config.max_body_bytes)
            texts = texts_field(body, "inputs")
            normalize = optional_field(body, "normalize", bool, True)
            truncate = optional_field(body, "truncate", bool, False)
            direction = optional_field(body, "truncation_direction", str, "right").lower()
            if direction not in ("right", "left"):
                raise ApiError(422, f"'truncation_direction' must be 'right' or 'left', got {direction!r}")
            if body.get("prompt_name") is not None:
                raise ApiError(422, "'prompt_name' is not supported: this model has no prompts")
            result = await _embed(state, texts, truncate=truncate, direction=direction)
        except ApiError as err:
            return err.response(TEI_ROUTE)
        vectors = l2_normalize(result.vectors) if normalize else result.vectors
        return JSONResponse(vectors.tolist(), headers={"x-prompt-tokens": str(result.tokens)})

    @app.get(MODELS_ROUTE)
    async def openai_models() -> Response:
        try:
            return JSONResponse(model_list(loaded_model()))
        except ApiError as err:
            return err.response(MODELS_ROUTE)

    @app.get(MODELS_ROUTE + "/{model_id:path}")
    async def openai_model(model_id: str) -> Response:
        path = f"{MODELS_ROUTE}/{model_id}"
        try:
            card = model_card(loaded_model())
            if model_id != card["id"]:
                raise ApiError(
                    404,
                    f"model {model_id!r} is not served here (this server serves {card['id']!r})",
                    "not_found",
                    code="model_not_found",
                    param="model",
                )
            return JSONResponse(card)
        except ApiError as err:
            return err.response(path)

    @app.get(INFO_ROUTE)
    async def info() -> Response:
        try:
            return JSONResponse(tei_info(loaded_model(), config, TOKENIZATION_WORKERS))
        except ApiError as err:
            return err.response(INFO_ROUTE)

    @app.get(HEALTH_ROUTE)
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

    @app.get(METRICS_ROUTE)
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    return app


def serve(config: ServeConfig) -> int:
    """Run the server until SIGINT/SIGTERM (then finish requests in flight); 1 if the port cannot be bound
    or the model fails to load, 2 if --host cannot be resolved."""
    import uvicorn

    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    try:
        sock = bind_socket(config.host, config.port)  # before the model loads: a busy port fails at once
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    host, port = sock.getsockname()[:2]
    if config.api_key is None and not is_loopback(sock):
        log.warning(
            "listening on %s without an API key: anyone who can reach this address can use the server "
            "(set %s or --api-key)",
            host,
            API_KEY_ENV,
        )
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
    state.stopping = lambda: server.should_exit
    log.info(
        "listening on http://%s (API key %s)",
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "required" if config.api_key else "not required",
    )
    server.run(sockets=[sock])
    if state.load_error is not None:
        print(f"error: could not load model {config.model}: {state.load_error}", file=sys.stderr, flush=True)
        return 1
    return 0
