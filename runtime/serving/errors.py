"""Error answers in each route's own format: OpenAI's under `/v1/` and on `/embeddings` (OpenAI's route
without the version prefix, as TEI also serves it), TEI's everywhere else.

OpenAI clients read `{"error": {"message", "type", "param", "code"}}` (the official `openai` package maps
the HTTP status to its exception class and keeps the body); TEI clients read `{"error", "error_type"}`.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

OPENAI_PREFIX = "/v1/"
OPENAI_PATHS = frozenset({"/v1", "/embeddings"})

# error kind -> (OpenAI `type`, TEI `error_type`). TEI has no authentication error type (it answers a
# bare 401); "Unauthorized" keeps its shape and says what happened.
ERROR_TYPES = {
    "validation": ("invalid_request_error", "Validation"),
    "too_large": ("invalid_request_error", "Validation"),
    "not_found": ("invalid_request_error", "Validation"),
    "method_not_allowed": ("invalid_request_error", "Validation"),
    "unsupported_media_type": ("invalid_request_error", "Validation"),
    "unauthorized": ("invalid_request_error", "Unauthorized"),
    "overloaded": ("server_overloaded", "Overloaded"),
    "unavailable": ("service_unavailable", "Unhealthy"),
    "internal": ("server_error", "Backend"),
}


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX) or path in OPENAI_PATHS


def error_body(
    path: str, message: str, kind: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The JSON body of an error answer on `path`, in that route's format."""
    openai_type, tei_type = ERROR_TYPES[kind]
    if is_openai_path(path):
        return {"error": {"message": message, "type": openai_type, "param": param, "code": code}}
    return {"error": message, "error_type": tei_type}


class ApiError(Exception):
    """An error answer: HTTP status, a message naming the field or limit, and an error kind."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "validation",
        retry_after: int | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.retry_after = retry_after
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def response(self, path: str) -> JSONResponse:
        """This error as an answer on `path` (a JSONResponse is also an ASGI app, for middleware)."""
        body = error_body(path, self.message, self.kind, code=self.code, param=self.param)
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse(body, status_code=self.status, headers=headers or None)
