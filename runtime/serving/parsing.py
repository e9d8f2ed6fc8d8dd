"""Request bodies: every error names the field or limit, in the route's own format.

The text field is checked by hand first, so that token-id input (what LangChain's `OpenAIEmbeddings`
sends by default) is refused with a sentence that says what to change, and a bad item is named by its
index; the rest of the body is validated against the route's pydantic model (`schemas`), the same model
the OpenAPI document declares.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ..text import text_problem
from .errors import ApiError

Body = TypeVar("Body", bound=BaseModel)

# Sent by clients that tokenize with their own (OpenAI's) tokenizer. Another tokenizer's ids are not this
# model's, so they are refused, naming the settings that make each client send text.
TOKEN_IDS_MESSAGE = (
    "'{name}' holds token ids; this server embeds text only (a string or a list of strings), since ids from "
    "another tokenizer are not this model's tokens. LangChain's OpenAIEmbeddings sends token ids by "
    "default: pass check_embedding_ctx_length=False (it then sends the texts)"
)
JSON_TYPES = ("application/json",)


def _type_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def texts_field(body: dict[str, Any], name: str) -> list[str]:
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
                422, TOKEN_IDS_MESSAGE.format(name=name), code="token_ids_not_supported", param=name
            )
        raise ApiError(422, f"'{name}[{i}]' must be a string, got {_type_name(item)}")
    return list(value)


def _check_unicode(text: str, where: str) -> None:
    """JSON escapes can spell a lone surrogate (`"\\ud800"`), which is no text the tokenizer can take."""
    problem = text_problem(text)
    if problem is not None:
        raise ApiError(422, f"'{where}' {problem}")


def validate_body(body: dict[str, Any], model: type[Body]) -> Body:
    """`body` as `model`, or a 422 naming the first field that does not fit, what it must be and what
    was sent."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        wanted = error["msg"].replace("Input should be", "must be", 1)
        sent = json.dumps(error.get("input"), ensure_ascii=False, default=str)
        sent = sent if len(sent) <= 60 else sent[:57] + "..."
        message = f"'{where}' {wanted}, got {_type_name(error.get('input'))} {sent}"
        raise ApiError(422, message, param=where) from None


def check_content_type(request: Request) -> None:
    """415 unless the body is declared as JSON (or not declared at all): what TEI answers, and what
    catches a `curl -d` that sent a form (`application/x-www-form-urlencoded`) by default."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or media.endswith("+json"):
        return
    raise ApiError(
        415,
        f"Content-Type {declared!r} is not JSON: send the body as JSON with 'Content-Type: application/json'",
        "unsupported_media_type",
    )


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 415 if declared as something else, 413 past `limit` bytes (checked
    while reading), 422 if not JSON."""
    check_content_type(request)
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


async def read_body(
    request: Request, limit: int, texts_name: str, model: type[Body]
) -> tuple[list[str], Body]:
    """An embedding request's texts and body: the JSON object, its text field checked first (token ids,
    the index of a bad item), then the whole body against the route's model."""
    raw = await read_json(request, limit)
    return texts_field(raw, texts_name), validate_body(raw, model)
