"""The routes: OpenAI's embeddings and models, TEI's embed (on `/embed`, `/` and `/invocations`, as TEI
serves an embedding model), `/info`, `/health` and `/metrics`.

Each route is declared once in :data:`ROUTES` with the answers it can give; `app` registers them and
`openapi` documents them from the same table. Each request is validated (`parsing`) and tokenized on
its own before it is queued, so one bad request never touches another caller's result.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ..common import normalize as l2_normalize
from ..encoder import Longformer2Vec
from .batcher import QueueFullError
from .errors import ApiError
from .info import model_card, model_list, tei_info
from .parsing import read_body
from .schemas import (
    Health,
    Info,
    ModelCard,
    ModelList,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    TEIEmbedRequest,
    TEIEmbedResponse,
)
from .state import TOKENIZATION_WORKERS, ServerState
from .tokens import prepare_encodings

log = logging.getLogger("longformer2vec.serving")

OPENAPI_ROUTE = "/openapi.json"  # the API's description and its Swagger UI, served by the app itself
DOCS_ROUTE = "/docs"
# The statuses an embedding route can answer besides 200 (and 401 with a key): too large, wrong
# content type, invalid body, loading or overloaded, model failure.
EMBED_ERRORS = (413, 415, 422, 500, 503)


@dataclass(frozen=True)
class RouteSpec:
    """One route: where, what it does, the body it takes, what it answers and whether a key guards it."""

    path: str
    method: str
    handler: Callable[[Request], Awaitable[Response]]
    summary: str
    ok: type[BaseModel] | None  # the 200 body (None: not JSON)
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    open: bool = False  # answered without the API key
    error_body: type[BaseModel] | None = None  # the body of its error answers; None: the family's error

    @property
    def name(self) -> str:
        return f"{self.method.lower()}_{self.path.strip('/').replace('/', '_').replace('{', '').replace('}', '') or 'root'}"


def _state(request: Request) -> ServerState:
    return request.app.state.serving


def _loaded(state: ServerState) -> Longformer2Vec:
    if state.model is None:
        raise ApiError(503, "model is loading", "unavailable", retry_after=state.config.retry_after_s)
    return state.model


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
    if len(texts) > cfg.max_inputs_per_request:  # a schema limit (maxItems): 422, as for any invalid body
        raise ApiError(
            422,
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


# ------------------------------------------------------------------------- handlers
async def openai_embeddings(request: Request) -> Response:
    state = _state(request)
    try:
        texts, body = await read_body(request, state.config.max_body_bytes, "input", OpenAIEmbeddingRequest)
        model = state.model
        if body.dimensions is not None and model is not None and body.dimensions != model.vector_length:
            raise ApiError(
                422,
                f"'dimensions' must be {model.vector_length} (this model's vector length) or omitted; "
                "shortening vectors is not supported",
                param="dimensions",
            )
        result = await _embed(state, texts)
    except ApiError as err:
        return err.response(request.url.path)
    vectors = l2_normalize(result.vectors) if state.config.normalize else result.vectors
    if body.encoding_format == "base64":
        items: list[Any] = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    else:
        items = vectors.tolist()
    return JSONResponse(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(items)],
            "model": state.served_name,
            "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
        }
    )


async def tei_embed(request: Request) -> Response:
    state = _state(request)
    try:
        texts, body = await read_body(request, state.config.max_body_bytes, "inputs", TEIEmbedRequest)
        direction = (body.truncation_direction or "right").lower()
        result = await _embed(state, texts, truncate=bool(body.truncate), direction=direction)
    except ApiError as err:
        return err.response(request.url.path)
    vectors = l2_normalize(result.vectors) if body.normalize is not False else result.vectors
    return JSONResponse(vectors.tolist(), headers={"x-prompt-tokens": str(result.tokens)})


async def openai_models(request: Request) -> Response:
    state = _state(request)
    try:
        return JSONResponse(model_list(_loaded(state), state.served_name))
    except ApiError as err:
        return err.response(request.url.path)


async def openai_model(request: Request) -> Response:
    state = _state(request)
    model_id = request.path_params["model_id"]
    try:
        card = model_card(_loaded(state), state.served_name)
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
        return err.response(request.url.path)


async def info(request: Request) -> Response:
    state = _state(request)
    try:
        return JSONResponse(tei_info(_loaded(state), state.config, TOKENIZATION_WORKERS, state.served_name))
    except ApiError as err:
        return err.response(request.url.path)


async def health(request: Request) -> Response:
    state = _state(request)
    if state.model is not None:
        return JSONResponse({"status": "ok", "model": state.served_name, "providers": state.model.providers})
    if state.load_error is not None:
        return JSONResponse({"status": "error", "error": state.load_error}, status_code=503)
    return JSONResponse(
        {"status": "loading"}, status_code=503, headers={"Retry-After": str(state.config.retry_after_s)}
    )


async def metrics(request: Request) -> Response:
    body, content_type = _state(request).metrics.render()
    return Response(body, media_type=content_type)


_OPENAI = "OpenAI-compatible embeddings"
_TEI = "text-embeddings-inference-compatible embeddings"
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("/v1/embeddings", "POST", openai_embeddings, _OPENAI, OpenAIEmbeddingResponse, EMBED_ERRORS, OpenAIEmbeddingRequest),
    RouteSpec("/embeddings", "POST", openai_embeddings, _OPENAI + " (OpenAI's route without /v1)", OpenAIEmbeddingResponse, EMBED_ERRORS, OpenAIEmbeddingRequest),
    RouteSpec("/v1/models", "GET", openai_models, "The served model, as OpenAI's model list", ModelList, (503,)),
    RouteSpec("/v1/models/{model_id}", "GET", openai_model, "The served model by its id", ModelCard, (404, 503)),
    RouteSpec("/embed", "POST", tei_embed, _TEI, TEIEmbedResponse, EMBED_ERRORS, TEIEmbedRequest),
    RouteSpec("/", "POST", tei_embed, _TEI + " (TEI's default route)", TEIEmbedResponse, EMBED_ERRORS, TEIEmbedRequest),
    RouteSpec("/invocations", "POST", tei_embed, _TEI + " (SageMaker's route)", TEIEmbedResponse, EMBED_ERRORS, TEIEmbedRequest),
    RouteSpec("/info", "GET", info, "The served model and the server's limits (TEI's Info)", Info, (503,)),
    RouteSpec("/health", "GET", health, "200 once the model is loaded, 503 before or on failure", Health, (503,), open=True, error_body=Health),
    RouteSpec("/", "GET", health, "Health (TEI's route)", Health, (503,), open=True, error_body=Health),
    RouteSpec("/ping", "GET", health, "Health (SageMaker's route)", Health, (503,), open=True, error_body=Health),
    RouteSpec("/metrics", "GET", metrics, "Prometheus metrics", None, open=True),
)  # fmt: skip


def route_label(path: str) -> str:
    """The metrics label of a request path: the route, or "other" for a path no route serves."""
    if path in (OPENAPI_ROUTE, DOCS_ROUTE) or any(spec.path == path for spec in ROUTES):
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    return "other"
