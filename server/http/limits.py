"""Request-level limits: a body-size cap (as ASGI middleware, before anything is parsed) and a per-address
throttle for failed API keys.

The body cap is our own because Starlette has no request-size limit; the throttle is a small sliding
window in memory (one process serves one GPU, so per-process state is the right scope).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errors import error_body


class BodyTooLarge(Exception):
    pass


def body_too_large(max_bytes: int) -> str:
    return f"Request body is larger than {max_bytes} bytes"


class BodySizeLimit:
    """Answers 413 in the error envelope when Content-Length, or the bytes actually streamed, exceed the cap."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except* BodyTooLarge:  # bare, or grouped by a middleware that reads the body in a task group
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(error_body(body_too_large(self.max_bytes))).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class KeyFailureThrottle:
    """Counts failed keys per client address over the last minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        window = self._failures[address]
        while window and now - window[0] > 60:
            window.popleft()
        return window

    def blocked_for(self, address: str) -> float:
        """Seconds until this address may try again (0 = allowed)."""
        now = time.monotonic()
        with self._lock:
            window = self._recent(address, now)
            if len(window) < self.per_minute:
                return 0.0
            return max(1.0, 60 - (now - window[0]))

    def record_failure(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)
