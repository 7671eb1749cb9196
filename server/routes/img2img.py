"""POST /api/v6/images/img2img and its legacy aliases: validate -> job row -> queue -> success | processing."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from server.auth import require_key
from server.errors import ApiError
from server.gpu_worker import JobFailed, JobMoved, QueueFull, WorkItem
from server.job_builder import build_job
from server.response_models import JOB_RESPONSES
from server.responses import processing_body, success_body
from server.schemas import Img2ImgRequest
from server.state import AppState, StateDep

router = APIRouter()

PATHS = ("/api/v6/images/img2img", "/api/v3/img2img", "/api/v3/dreambooth/img2img", "/api/v4/dreambooth/img2img")


def _queue_full(max_queue: int) -> ApiError:
    return ApiError(f"Rate limit exceeded. Maximum {max_queue} queued requests allowed.", http_status=429, retry_after=30)


async def _submit(body: Img2ImgRequest, state: AppState) -> WorkItem:
    # Marked as incoming while its image is fetched, so a batching worker knows a job is on its way.
    with state.worker.incoming():
        job = await build_job(body, state)
        try:
            return await asyncio.to_thread(state.dispatcher.submit, job.payload, job.meta, job.webhook, job.track_id)
        except QueueFull:
            raise _queue_full(state.settings.max_queue) from None


@router.post(PATHS[0], summary="Image to image (ModelsLab v6 compatible)", response_model=None, responses=JOB_RESPONSES)
async def img2img(body: Img2ImgRequest, request: Request, state: StateDep) -> dict:
    """Generate images from init_image and prompt; answers success, or processing when it takes too long."""
    require_key(body.key, request, state.settings, state.key_throttle)
    item = await _submit(body, state)
    job_id = request.state.job_id = item.job_id
    eta = state.worker.eta()
    timeout = state.settings.sync_timeout
    try:
        if timeout > 0:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(item.future)), timeout)
    except (asyncio.TimeoutError, JobMoved):
        pass  # still running (here or on the server that took it over): answer "processing"
    except JobFailed as exc:
        raise ApiError(str(exc), http_status=exc.http_status, id=job_id) from None
    row = state.jobs.get(job_id)
    assert row is not None
    if row.status == "success":
        return success_body(row, state.store, state.settings.inline_base64, state.jobs.webhook_status(job_id))
    return processing_body(row, state.store, eta, state.settings.base_url())


for _alias in PATHS[1:]:
    router.add_api_route(_alias, img2img, methods=["POST"], include_in_schema=False)
