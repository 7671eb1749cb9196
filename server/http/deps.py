"""Typed dependencies of the routes: the app state, the request's fields, and the API-key check."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request

from server.api.errors import ApiError
from server.api.fields import presented_key
from server.http.auth import require_key
from server.http.state import AppState, get_state

INVALID_JSON = "Invalid JSON body"

StateDep = Annotated[AppState, Depends(get_state)]


async def request_fields(request: Request) -> dict[str, Any]:
    """The body's JSON object; when the body is empty or not JSON, the query string's fields instead.

    Older clients post an empty body with every field in the URL; FastAPI caches this per request, so the
    key check and the route read the same fields.
    """
    fields = await _fields(request)
    if fields is None:
        raise ApiError(INVALID_JSON)
    return fields


async def fields_or_empty(request: Request) -> dict[str, Any]:
    """As request_fields, for routes that need nothing from the body (a fetch by path): empty is fine."""
    if not (await request.body()).strip() and not request.query_params:
        return {}
    return await request_fields(request)


async def _fields(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    query = dict(request.query_params)
    if raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    return query or None


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
