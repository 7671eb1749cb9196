"""Typed dependencies of the routes: the app state, the request's fields, and the API-key check."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request

from server.api.errors import ApiError
from server.api.fields import presented_key
from server.http.auth import require_key
from server.http.limits import BodyTooLarge, body_too_large
from server.http.state import AppState, get_state

INVALID_JSON = "Invalid JSON body"

StateDep = Annotated[AppState, Depends(get_state)]


async def request_fields(request: Request) -> dict[str, Any]:
    """The body's JSON object; when the body is empty or not JSON, the query string's fields instead.

    Older clients post an empty body with every field in the URL; FastAPI caches this per request, so the
    key check and the route read the same fields. The Content-Type header is not looked at unless the body
    fails to parse: then the error says what was sent instead of a JSON object.
    """
    fields, problem = await _fields(request)
    if fields is None:
        raise ApiError(f"{INVALID_JSON}: {problem}")
    return fields


async def fields_or_empty(request: Request) -> dict[str, Any]:
    """As request_fields, for routes that need nothing from the body (a fetch by path): empty is fine."""
    if not (await _body(request)).strip() and not request.query_params:
        return {}
    return await request_fields(request)


async def _body(request: Request) -> bytes:
    try:
        return await request.body()
    except BodyTooLarge:
        # A body streamed without Content-Length ran past the cap while being read (BodySizeLimit stops it).
        raise ApiError(body_too_large(get_state(request).settings.max_body_bytes), http_status=413) from None


async def _fields(request: Request) -> tuple[dict[str, Any] | None, str]:
    """The fields, or None and what is wrong with the body (for the error message)."""
    raw = await _body(request)
    query = dict(request.query_params)
    problem = "the body is empty; send a JSON object"
    if raw.strip():
        try:
            data = json.loads(raw)
        except ValueError as exc:
            data, problem = None, _parse_problem(request, exc)
        except RecursionError:
            data, problem = None, "the JSON is nested too deeply"
        if isinstance(data, dict):
            return data, ""
        if data is not None or raw.strip() == b"null":
            problem = f"the body is {_json_kind(data)}; send a JSON object"
    return (query, "") if query else (None, problem)


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _parse_problem(request: Request, exc: ValueError) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in FORM_TYPES:
        return f"the body is {media_type}; send a JSON object"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "the body is not UTF-8 text; send a JSON object"


def _json_kind(data: object) -> str:
    if isinstance(data, list):
        return "a JSON array"
    if isinstance(data, str):
        return "a JSON string"
    if data is None:
        return "JSON null"
    if isinstance(data, bool):
        return "a JSON boolean"
    return "a JSON number"


FieldsDep = Annotated[dict[str, Any], Depends(request_fields)]


def authorized(request: Request, fields: FieldsDep, state: StateDep) -> None:
    require_key(presented_key(fields), request, state.settings, state.key_throttle)


def authorized_maybe_empty(request: Request, fields: Annotated[dict[str, Any], Depends(fields_or_empty)],
                           state: StateDep) -> None:
    require_key(presented_key(fields), request, state.settings, state.key_throttle)


def authorized_without_body(request: Request, state: StateDep) -> None:
    """For GET routes: the key from a header or the query string."""
    require_key(None, request, state.settings, state.key_throttle)


Authorized = Annotated[None, Depends(authorized)]
AuthorizedMaybeEmpty = Annotated[None, Depends(authorized_maybe_empty)]
