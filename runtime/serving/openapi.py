"""The OpenAPI document of a running server, built from the route table (`routes.ROUTES`) and the
pydantic bodies (`schemas`), with this server's own limits: how many inputs a request may hold, the
vector length `dimensions` must equal, the served model name, and (with an API key) the bearer scheme
on every route that needs it. So a client generator gets the real contract and a fuzzer can hold the
server to it.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from .. import __version__
from .errors import is_openai_path
from .routes import ROUTES, RouteSpec
from .schemas import OpenAIError, TEIEmbedResponse, TEIError
from .state import ServerState

BEARER = "bearer"
DESCRIPTIONS = {
    200: "Success",
    401: "Missing or wrong API key (`Authorization: Bearer <key>`)",
    404: "No such model here",
    413: "Over a limit: tokens per request or body bytes",
    415: "The body is not declared as JSON",
    422: "The body is not valid JSON, a field is invalid or it holds more texts than allowed; the message "
    "names the field",
    500: "The model call failed",
    503: "The model is loading, or the queue is full (Retry-After says when to retry)",
}
OVERVIEW = (
    "Embeddings from a Longformer ONNX export. OpenAI's `/v1/embeddings` and text-embeddings-inference's "
    "`/embed` (also on `/` and `/invocations`). Texts longer than the model maximum are embedded as "
    "overlapping windows, not cut (unless TEI's `truncate` is set). Errors answer in the route's own "
    "format: OpenAI's under `/v1/` and on `/embeddings`, TEI's elsewhere."
)


class _Schemas:
    """`components.schemas`: each pydantic model once, referenced by `$ref`."""

    def __init__(self) -> None:
        self.table: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        name = model.__name__
        if name not in self.table:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            self.table.update(schema.pop("$defs", {}))
            self.table[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(spec: RouteSpec, schemas: _Schemas, needs_key: bool) -> dict[str, Any]:
    error = schemas.ref(OpenAIError if is_openai_path(spec.path) else TEIError)
    op: dict[str, Any] = {"summary": spec.summary, "operationId": spec.name}
    if "{model_id}" in spec.path:
        op["parameters"] = [
            {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": _json(schemas.ref(spec.body))}
    ok: dict[str, Any] = {"description": DESCRIPTIONS[200]}
    if spec.ok is not None:
        ok["content"] = _json(schemas.ref(spec.ok))
    else:
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
    if spec.ok is TEIEmbedResponse:
        ok["headers"] = {
            "x-prompt-tokens": {"description": "Tokens in the request", "schema": {"type": "string"}}
        }
    responses: dict[str, Any] = {"200": ok}
    failed = schemas.ref(spec.error_body) if spec.error_body is not None else error
    for status in spec.errors:
        responses[str(status)] = {"description": DESCRIPTIONS[status], "content": _json(failed)}
    if needs_key:
        responses["401"] = {"description": DESCRIPTIONS[401], "content": _json(error)}
        op["security"] = [{BEARER: []}]
    op["responses"] = dict(sorted(responses.items()))
    return op


def _texts_limit(schema: dict[str, Any], field: str, max_items: int) -> None:
    """The array form of a text field: at least one text, at most `--max-inputs-per-request`."""
    for branch in schema["properties"][field]["anyOf"]:
        if branch.get("type") == "array":
            branch.update(minItems=1, maxItems=max_items)


def openapi_document(state: ServerState, open_routes: set[tuple[str, str]]) -> dict[str, Any]:
    """The document `GET /openapi.json` answers; `open_routes` are the (method, path) pairs that need
    no key (all of them when the server has none)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    has_key = state.config.api_key is not None
    for spec in ROUTES:
        needs_key = has_key and (spec.method, spec.path) not in open_routes
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, schemas, needs_key)
    table = copy.deepcopy(schemas.table)
    _texts_limit(table["OpenAIEmbeddingRequest"], "input", state.config.max_inputs_per_request)
    _texts_limit(table["TEIEmbedRequest"], "inputs", state.config.max_inputs_per_request)
    if state.model is not None:  # the only vector length this model gives, and the only model id it serves
        table["OpenAIEmbeddingRequest"]["properties"]["dimensions"]["anyOf"] = [
            {"type": "integer", "const": state.model.vector_length},
            {"type": "null"},
        ]
        model_id = paths["/v1/models/{model_id}"]["get"]["parameters"][0]["schema"]
        model_id["examples"] = [state.served_name]
    components: dict[str, Any] = {"schemas": dict(sorted(table.items()))}
    if has_key:
        components["securitySchemes"] = {
            BEARER: {"type": "http", "scheme": "bearer", "description": "The server's API key"}
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "longformer2vec", "version": __version__, "description": OVERVIEW},
        "paths": paths,
        "components": components,
    }
