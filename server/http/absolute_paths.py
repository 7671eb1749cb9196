"""Requests whose target is an absolute URL (`POST http://host:port/api/v3/fetch/42 HTTP/1.1`).

HTTP/1.1 servers must accept that form (RFC 9112 §3.2.2), and the 2023 `stablediffusionapi` client
sends its fetch that way. uvicorn's httptools parser reduces it to the path, its h11 parser does not,
and Ray Serve's proxy differs again; rewriting the ASGI path here makes routing the same on all of them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send


class AbsoluteFormPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("http://", "https://")):
            path = urlsplit(scope["path"]).path or "/"
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)
