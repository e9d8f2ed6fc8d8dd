"""API key check: `Authorization: Bearer <key>` on every route but the open ones (health, the API
description, and `/metrics` unless told otherwise), as OpenAI's API and TEI's `--api-key` expect it.

A missing or wrong key gets 401 in the route's own error format, with `WWW-Authenticate: Bearer`
(RFC 6750). As OpenAI does, a request without a key gets `code: null` and one with a wrong key
`code: "invalid_api_key"`; both are `invalid_request_error`. The key is compared in constant time
(`hmac.compare_digest` over SHA-256 digests, so neither its content nor its length leaks through
timing) and never appears in an answer or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from .errors import ApiError

_BEARER = b"bearer"


def _authorization(scope: dict[str, Any]) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bytes(value)
    return None


class ApiKeyMiddleware:
    """Pure ASGI middleware: refuse any HTTP request outside `open_paths` without the right Bearer key."""

    def __init__(self, app: Any, api_key: str, open_routes: Collection[tuple[str, str]]) -> None:
        """`open_routes`: (method, path) pairs answered without the key (HEAD counts as GET)."""
        self.app = app
        self._digest = hashlib.sha256(api_key.encode("ascii")).digest()
        self.open_routes = frozenset(open_routes)

    def check(self, authorization: bytes | None) -> ApiError | None:
        """None if `authorization` (the header's raw value) carries the key, else the 401 to answer."""
        value = (authorization or b"").strip()
        if not value:
            return _unauthorized("no API key: send it in the Authorization header as 'Bearer <key>'", None)
        scheme, _, token = value.partition(b" ")
        token = token.strip()
        if scheme.lower() != _BEARER or not token:
            return _unauthorized(
                "the Authorization header is not 'Bearer <key>': put 'Bearer ' before the key", None
            )
        if not hmac.compare_digest(hashlib.sha256(token).digest(), self._digest):
            return _unauthorized("incorrect API key", "invalid_api_key")
        return None

    async def __call__(
        self, scope: dict[str, Any], receive: Callable, send: Callable[[dict], Awaitable[None]]
    ) -> None:
        method = "GET" if scope.get("method") == "HEAD" else scope.get("method")
        if scope["type"] != "http" or (method, scope["path"]) in self.open_routes:
            await self.app(scope, receive, send)
            return
        error = self.check(_authorization(scope))
        if error is None:
            await self.app(scope, receive, send)
            return
        await error.response(scope["path"])(scope, receive, send)


def _unauthorized(message: str, code: str | None) -> ApiError:
    return ApiError(401, message, "unauthorized", code=code, headers={"WWW-Authenticate": "Bearer"})
