"""Process logging: text or JSON lines (SDGATE_LOG_FORMAT), plus one line per HTTP request.

Request lines carry method, path, status, milliseconds and the job id the request created or read;
bodies, headers and query strings are never logged, so API keys cannot leak into logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from pythonjsonlogger.json import JsonFormatter

access = logging.getLogger("sdgate.access")


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # uvicorn's own access log prints the query string; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True


async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    millis = round((time.perf_counter() - started) * 1000, 1)
    job_id = getattr(request.state, "job_id", None)
    access.info(
        "%s %s %s %.1fms job=%s", request.method, request.url.path, response.status_code, millis, job_id,
        extra={"method": request.method, "path": request.url.path, "status": response.status_code, "ms": millis,
               "job_id": job_id},
    )
    return response
