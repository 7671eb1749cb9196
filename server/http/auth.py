"""API-key check: the key travels in the body (hosted style), else Authorization: Bearer, else a `key` header,
else `?key=` in the query string."""

from __future__ import annotations

import hmac
import logging

from fastapi import Request

from server.api.errors import ApiError
from server.http.limits import KeyFailureThrottle
from server.ops.settings import Settings

log = logging.getLogger(__name__)

INVALID_KEY = "Invalid API key"
NO_KEY_SENT = f'{INVALID_KEY}: no key was sent (put "key" in the JSON body, or send Authorization: Bearer <key>)'


def presented_key(body_key: str | None, request: Request) -> str | None:
    if body_key:
        return body_key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("key") or request.query_params.get("key") or None


def require_key(body_key: str | None, request: Request, settings: Settings, throttle: KeyFailureThrottle) -> None:
    """Raise unless the key is accepted. Keyless servers (loopback only) accept any key.

    The key itself never appears in a log line or an answer.
    """
    keys = settings.key_list()
    if not keys:
        return
    address = request.client.host if request.client else "unknown"
    wait = throttle.blocked_for(address)
    if wait:
        raise ApiError("Too many failed API key attempts; try again later", http_status=429, retry_after=int(wait) + 1)
    key = presented_key(body_key, request)
    # Compare against every key, without early exit, so timing reveals neither the key nor which one matched.
    matched = False
    for candidate in keys:
        matched |= key is not None and hmac.compare_digest(key.encode(), candidate.encode())
    if not matched:
        throttle.record_failure(address)
        log.warning("rejected API key from %s%s", address, " (none sent)" if key is None else "")
        # A wrong key gets exactly the hosted text: nothing about the key is echoed.
        raise ApiError(INVALID_KEY if key is not None else NO_KEY_SENT)
