"""Request bodies, parsed by hand: every error names the field or limit, in the route's own format.

pydantic models would answer FastAPI's generic 422 list; these say which field, what it should be and
what it was, and refuse token-id input (only text is supported) with a sentence that says so.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from ..text import text_problem
from .errors import ApiError


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
                422, f"'{name}' holds token ids; only text is supported (a string or list of strings)"
            )
        raise ApiError(422, f"'{name}[{i}]' must be a string, got {_type_name(item)}")
    return list(value)


def _check_unicode(text: str, where: str) -> None:
    """JSON escapes can spell a lone surrogate (`"\\ud800"`), which is no text the tokenizer can take."""
    problem = text_problem(text)
    if problem is not None:
        raise ApiError(422, f"'{where}' {problem}")


def optional_field(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        wanted = "an integer" if kind is int else f"a {_type_name(kind())}"
        raise ApiError(422, f"'{name}' must be {wanted}, got {_type_name(value)}")
    return value


async def read_json(request: Request, limit: int) -> dict[str, Any]:
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
