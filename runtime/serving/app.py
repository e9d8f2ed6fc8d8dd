"""The HTTP app (`create_app`) and `serve()` (uvicorn): the routes of `routes.ROUTES`, the OpenAPI
document and Swagger UI (`/openapi.json`, `/docs`, open without a key), the API key check, metrics,
and answers in the route family's error format for everything FastAPI would otherwise answer itself
(unknown paths, wrong methods).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..encoder import Longformer2Vec
from ..errors import Longformer2VecError
from .auth import ApiKeyMiddleware
from .batcher import MicroBatcher
from .config import API_KEY_ENV, ServeConfig
from .errors import ApiError
from .listen import ListenError, bind_socket, is_loopback
from .middleware import CancelledRequestMiddleware, MetricsMiddleware
from .openapi import openapi_document
from .routes import DOCS_ROUTE, OPENAPI_ROUTE, ROUTES, route_label
from .state import ServerState

log = logging.getLogger("longformer2vec.serving")

HTTP_ERROR_KINDS = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}


def load_model(config: ServeConfig) -> Longformer2Vec:
    """The model as the Python API builds it; normalisation is applied per request, not here."""
    options = dataclasses.replace(config.model_options(), normalize=False)  # normalized per request
    return Longformer2Vec.from_options(options)


def open_routes(config: ServeConfig) -> set[tuple[str, str]]:
    """(method, path) pairs answered without the key: health, the API description, and /metrics unless
    `--metrics-require-key`."""
    routes = {(s.method, s.path) for s in ROUTES if s.open}
    if config.metrics_require_key:
        routes.discard(("GET", "/metrics"))
    return routes | {("GET", OPENAPI_ROUTE), ("GET", DOCS_ROUTE)}


def _allowed_methods(app: FastAPI, scope: dict) -> list[str]:
    """Every method some route serves on this path (the `Allow` header of a 405)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def create_app(
    config: ServeConfig, *, model_factory: Callable[[ServeConfig], Longformer2Vec] = load_model
) -> FastAPI:
    """The ASGI app. The model loads in a background thread at startup, so /health can say 'loading'."""
    state = ServerState(config)

    def load() -> None:
        try:
            model = model_factory(config)
            state.batcher = MicroBatcher(
                model.encode_encodings,  # the encodings the route made: each request is tokenized once
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
                "model %s loaded from %s as %r (providers %s)",
                model.manifest.model_id,
                model.model_dir,
                state.served_name,
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

    app = FastAPI(title="longformer2vec", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serving = state
    unguarded = open_routes(config)
    # Added innermost first: metrics (outermost) count every answer, 401s and shutdown 503s included.
    if config.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key, open_routes=unguarded)
    app.add_middleware(
        CancelledRequestMiddleware, reason=cancelled_reason, retry_after_s=config.retry_after_s
    )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, route_label=route_label)

    for spec in ROUTES:
        path = spec.path.replace("{model_id}", "{model_id:path}")  # hub ids hold a slash
        app.add_api_route(path, spec.handler, methods=[spec.method], name=spec.name, include_in_schema=False)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        """404 and 405 in the route family's error format (FastAPI's own is `{"detail": ...}`)."""
        path = request.url.path
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {path}; it answers {', '.join(allowed)}"
        elif exc.status_code == 404:
            message = f"no route {path}; see {OPENAPI_ROUTE} for the routes this server answers"
        else:
            message = str(exc.detail)
        kind = HTTP_ERROR_KINDS.get(exc.status_code, "validation")
        return ApiError(exc.status_code, message, kind, headers=headers).response(path)

    @app.get(OPENAPI_ROUTE, include_in_schema=False)
    async def openapi_json() -> Response:
        return JSONResponse(openapi_document(state, unguarded))

    @app.get(DOCS_ROUTE, include_in_schema=False)
    async def swagger_ui() -> Response:
        return get_swagger_ui_html(openapi_url=OPENAPI_ROUTE, title="longformer2vec API")

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
