"""GET / : the playground page (plain HTML + JS shipped in the package, no build step)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pipelines.schedulers import SCHEDULER_NAMES

router = APIRouter()


@cache
def _asset(name: str) -> str:
    return resources.files("server.http").joinpath("static", name).read_text()


@router.get("/", include_in_schema=False)
async def playground() -> HTMLResponse:
    return HTMLResponse(_asset("index.html").replace("__SCHEDULERS__", json.dumps(list(SCHEDULER_NAMES))))


@router.get("/static/playground.js", include_in_schema=False)
async def playground_script() -> Response:
    return Response(_asset("playground.js"), media_type="text/javascript")
