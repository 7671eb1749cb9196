"""API-key check: the key travels in the body (hosted style), else Authorization: Bearer, else a `key` header."""

from __future__ import annotations

import hmac

from fastapi import Request

from server.errors import ApiError
from server.settings import Settings

INVALID_KEY = "Invalid API key"


def presented_key(body_key: str | None, request: Request) -> str | None:
    if body_key:
        return body_key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("key") or None


def require_key(body_key: str | None, request: Request, settings: Settings) -> None:
    """Raise InvalidKey unless the key is accepted. Keyless servers (loopback only) accept any key."""
    keys = settings.key_list()
    if not keys:
        return
    key = presented_key(body_key, request)
    if key is None:
        raise ApiError(INVALID_KEY)
    # Compare against every key, without early exit, so timing reveals neither the key nor which one matched.
    matched = False
    for candidate in keys:
        matched |= hmac.compare_digest(key.encode(), candidate.encode())
    if not matched:
        raise ApiError(INVALID_KEY)
