"""Fetch a job by id: in the path (v6 and its legacy and v7 aliases) or as request_id in the body.

Any fetch path returns any job; the answer is shaped by the route the job came in by, which it recorded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from server.api.errors import ApiError
from server.api.fields import FetchRequest, parse_fields
from server.api.responses import processing_body, success_body
from server.http.deps import Authorized, AuthorizedMaybeEmpty, FieldsDep, StateDep, authorized_without_body
from server.http.response_models import JOB_RESPONSES
from server.http.state import AppState

router = APIRouter()

BY_PATH = ("/api/v6/images/fetch/{job_id}", "/api/v3/fetch/{job_id}", "/api/v3/dreambooth/fetch/{job_id}",
           "/api/v4/dreambooth/fetch/{job_id}", "/api/v5/images/fetch/{job_id}", "/api/v7/images/fetch/{job_id}",
           "/api/v6/realtime/fetch/{job_id}", "/api/v6/image_editing/fetch/{job_id}")
BY_BODY = ("/api/v6/images/fetch", "/api/v4/dreambooth/fetch", "/api/v3/dreambooth/fetch")


def job_answer(job_id: int | str | None, state: AppState) -> dict[str, Any]:
    try:
        number = int(str(job_id))
    except ValueError:
        number = 0
    # Ids are positive 64-bit integers; anything else cannot name a job (and would overflow the database).
    row = state.jobs.get(number) if 0 < number < 2**63 else None
    if row is None:
        raise ApiError(f"Request not found: {job_id}")
    if row.status == "success":
        return success_body(row, state.store, state.settings.inline_base64, state.jobs.webhook_status(row.id))
    if row.status == "failed":
        raise ApiError(row.error or "Generation failed", id=row.id)
    body = processing_body(row, state.store, state.worker.eta(), state.settings.base_url())
    body["message"] = body["messege"] = "try again later."
    return body


async def fetch_by_path(job_id: str, request: Request, state: StateDep, _: AuthorizedMaybeEmpty) -> dict[str, Any]:
    """The job's success object once done; processing while queued or running. The body may be empty
    (the key then comes from a header or the query string)."""
    request.state.job_id = job_id
    return job_answer(job_id, state)


async def fetch_by_path_get(job_id: str, request: Request, state: StateDep,
                            _: None = Depends(authorized_without_body)) -> dict[str, Any]:
    """GET form (key in a header or ?key=)."""
    request.state.job_id = job_id
    return job_answer(job_id, state)


async def fetch_by_body(fields: FieldsDep, state: StateDep, _: Authorized) -> dict[str, Any]:
    """Same as fetch/{id}, with the id in the body as request_id."""
    body = parse_fields(FetchRequest, fields)
    if body.request_id is None:
        raise ApiError("request_id is required")
    return job_answer(body.request_id, state)


for _index, _path in enumerate(BY_PATH):
    router.add_api_route(_path, fetch_by_path, methods=["POST"], summary="Fetch a job by id", response_model=None,
                         responses=JOB_RESPONSES, include_in_schema=_index == 0)
router.add_api_route("/api/v5/images/fetch/{job_id}", fetch_by_path_get, methods=["GET"], include_in_schema=False,
                     response_model=None)
for _index, _path in enumerate(BY_BODY):
    router.add_api_route(_path, fetch_by_body, methods=["POST"], summary="Fetch a job by request_id",
                         response_model=None, responses=JOB_RESPONSES, include_in_schema=_index == 0,
                         openapi_extra={"requestBody": {"content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/FetchRequest"}}}}})
