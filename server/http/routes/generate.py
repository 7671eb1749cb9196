"""The diffusion endpoints, one route per path of each endpoint row: validate -> job row -> queue -> answer.

No `from __future__ import annotations` here: the route handlers are closures, and Ray Serve ships the app
to its replicas with cloudpickle, which copies a closure's globals only as far as its code uses them.
String annotations would then name types the replica cannot resolve; real objects travel with the function.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from server.api.errors import ApiError
from server.api.fields import parse_fields
from server.api.responses import processing_body, success_body
from server.api.submission import JobContext, TaskRequest
from server.http.deps import Authorized, FieldsDep, StateDep
from server.http.endpoints import ENDPOINTS, Endpoint
from server.http.response_models import JOB_RESPONSES
from server.http.state import AppState
from server.jobs.record import new_record
from server.workers.queue import JobFailed, JobMoved, QueueFull, WorkItem

router = APIRouter()


def job_context(state: AppState) -> JobContext:
    return JobContext(state.settings, state.registry.config, state.url_guard, state.safety is not None)


async def submit(body: TaskRequest, route: str, state: AppState) -> WorkItem:
    # Marked as incoming while its images are fetched, so a batching worker knows a job is on its way.
    with state.worker.incoming():
        job = await body.to_job(job_context(state))
        record, inputs = new_record(job.spec, job.output, route, job.meta, job.priority)
        try:
            return await asyncio.to_thread(state.dispatcher.submit, job.spec, record, inputs, job.webhook,
                                           job.track_id)
        except QueueFull:
            raise ApiError(f"Rate limit exceeded. Maximum {state.settings.max_queue} queued requests allowed.",
                           http_status=429, retry_after=30) from None


async def answer(item: WorkItem, state: AppState, wait: float) -> dict[str, Any]:
    """success once the job is done within `wait` seconds; processing (fetch it later) otherwise."""
    eta = state.worker.eta()
    try:
        if wait > 0:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(item.future)), wait)
    except (TimeoutError, JobMoved):
        pass  # still running (here or on the server that took it over): answer "processing"
    except JobFailed as exc:
        raise ApiError(str(exc), http_status=exc.http_status, id=item.job_id) from None
    row = state.jobs.get(item.job_id)
    assert row is not None
    if row.status == "success":
        return success_body(row, state.store, state.settings.inline_base64, state.jobs.webhook_status(item.job_id))
    return processing_body(row, state.store, eta, state.settings.base_url())


def _route(endpoint: Endpoint) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def generate(request: Request, fields: FieldsDep, state: StateDep, _: Authorized) -> dict[str, Any]:
        body = parse_fields(endpoint.request, fields, {"max_side": state.settings.max_side})
        item = await submit(body, request.url.path, state)
        request.state.job_id = item.job_id
        return await answer(item, state, 0 if body.instant_response else state.settings.sync_timeout)

    generate.__doc__ = endpoint.description
    return generate


def _body_schema(model: type[TaskRequest]) -> dict[str, Any]:
    # Routes read their fields themselves (body or query string), so FastAPI does not see the model:
    # the operation points at it and the app adds it to the document's components (REQUEST_MODELS).
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


REQUEST_MODELS = tuple(endpoint.request for endpoint in ENDPOINTS)


for _endpoint in ENDPOINTS:
    _handler = _route(_endpoint)
    for _index, _path in enumerate(_endpoint.paths):
        router.add_api_route(_path, _handler, methods=["POST"], summary=_endpoint.summary, response_model=None,
                             responses=JOB_RESPONSES, include_in_schema=_index == 0,
                             openapi_extra=_body_schema(_endpoint.request), name=f"{_endpoint.request.__name__}:{_path}")
