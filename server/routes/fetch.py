"""POST /api/v6/images/fetch/{id} and /api/v6/images/fetch (request_id in the body), plus legacy aliases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.auth import require_key
from server.errors import ApiError
from server.responses import processing_body, success_body
from server.response_models import JOB_RESPONSES
from server.schemas import FetchRequest
from server.state import AppState, StateDep

router = APIRouter()


def _fetch(job_id: int | str | None, state: AppState) -> dict[str, Any]:
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


@router.post("/api/v6/images/fetch/{job_id}", summary="Fetch a job by id", response_model=None,
             responses=JOB_RESPONSES)
async def fetch_by_path(job_id: str, body: FetchRequest, request: Request, state: StateDep) -> dict:
    """The job's success object once done; processing while queued or running."""
    require_key(body.key, request, state.settings, state.key_throttle)
    request.state.job_id = job_id
    return _fetch(job_id, state)


@router.post("/api/v6/images/fetch", summary="Fetch a job by request_id", response_model=None, responses=JOB_RESPONSES)
async def fetch_by_body(body: FetchRequest, request: Request, state: StateDep) -> dict:
    """Same as fetch/{id}, with the id in the body as request_id."""
    require_key(body.key, request, state.settings, state.key_throttle)
    if body.request_id is None:
        raise ApiError("request_id is required")
    return _fetch(body.request_id, state)


router.add_api_route("/api/v3/fetch/{job_id}", fetch_by_path, methods=["POST"], include_in_schema=False)
router.add_api_route("/api/v4/dreambooth/fetch", fetch_by_body, methods=["POST"], include_in_schema=False)
