"""One error envelope for every failure, in the hosted shape: status, message and the hosted `messege` typo."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error. Please try again."


class ApiError(Exception):
    """An expected failure; `message` is shown to the client. HTTP 200 unless the contract says otherwise."""

    def __init__(self, message: str, http_status: int = 200, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.extra = extra


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "messege": message, **extra}


def describe_validation_error(errors: list[dict[str, Any]]) -> str:
    """The first problem in words, naming the field; our validators already phrase theirs in the hosted wording."""
    if not errors:
        return "Invalid request"
    first = errors[0]
    if first["type"] in ("json_invalid", "model_attributes_type", "dict_type", "model_type"):
        return "Invalid JSON body"
    if first["type"] == "missing" and tuple(first.get("loc", ())) == ("body",):
        return "Invalid JSON body"  # an empty body or JSON null
    field = next((str(p) for p in reversed(first.get("loc", ())) if p != "body"), "request")
    if first["type"] == "missing":
        return f"{field} is required"
    if first["type"] == "value_error" and "error" in first.get("ctx", {}):
        return str(first["ctx"]["error"])
    return f"{field}: {first['msg']}"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
    return JSONResponse(error_body(exc.message, **exc.extra), status_code=exc.http_status, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(error_body(describe_validation_error(list(exc.errors()))))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own "error parsing the body" (bytes that are not UTF-8 / JSON): a bad input like any other.
        return JSONResponse(error_body("Invalid JSON body"))
    message = "Not found" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(error_body(message), status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body(INTERNAL_ERROR), status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
