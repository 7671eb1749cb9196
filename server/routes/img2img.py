"""POST /api/v6/images/img2img and its legacy aliases: validate -> job row -> queue -> success | processing."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from fastapi import APIRouter, Request

from pipelines.images import ImageError, decode_image, fit_to_output
from pipelines.prompts import UnknownStyle, build_negative_prompt, build_prompt, get_style
from pipelines.registry import ModelNotFound
from pipelines.spec import GenerationSpec
from server.adapter_fields import resolve_adapters
from server.auth import require_key
from server.errors import ApiError
from server.job_codec import JobPayload
from server.gpu_worker import JobFailed, QueueFull, WorkItem
from server.init_image import load_image_bytes
from server.url_guard import UrlFetchFailed, UrlRefused
from server.responses import build_meta, processing_body, success_body
from server.response_models import JOB_RESPONSES
from server.schemas import Img2ImgRequest
from server.state import AppState, StateDep

router = APIRouter()

PATHS = ("/api/v6/images/img2img", "/api/v3/img2img", "/api/v3/dreambooth/img2img", "/api/v4/dreambooth/img2img")


def _queue_full(max_queue: int) -> ApiError:
    return ApiError(f"Rate limit exceeded. Maximum {max_queue} queued requests allowed.", http_status=429, retry_after=30)


async def _submit(body: Img2ImgRequest, state: AppState) -> tuple[int, WorkItem]:
    settings = state.settings
    for name, text in (("prompt", body.prompt), ("negative_prompt", body.negative_prompt or "")):
        if len(text) > settings.max_prompt_chars:
            raise ApiError(f"{name} is longer than {settings.max_prompt_chars} characters")
    model_id = body.model_id or state.registry.config.default_model_id() or ""
    try:
        entry = state.registry.entry(model_id)
    except ModelNotFound as exc:
        raise ApiError(str(exc)) from None
    if body.webhook is not None:
        try:
            await state.url_guard.pin(body.webhook)
        except (UrlRefused, UrlFetchFailed):
            raise ApiError("webhook must be a public http(s) URL") from None
    adapters = await resolve_adapters(body, state.registry.config, model_id, settings, state.url_guard)
    if body.safety_checker and state.safety is None:
        raise ApiError(
            "safety_checker is on but this server has no NSFW detector installed; "
            "send safety_checker: no, or ask the operator to install sdgate[safety]"
        )
    try:
        style = get_style(body.enhance_style) if body.enhance_style else None
    except UnknownStyle as exc:
        raise ApiError(str(exc)) from None
    data = await load_image_bytes(body.init_image, base64_mode=body.base64, guard=state.url_guard)
    try:
        image = await asyncio.to_thread(decode_image, data, max_pixels=settings.max_image_pixels)
        image = await asyncio.to_thread(fit_to_output, image, settings.max_side)
    except ImageError as exc:
        raise ApiError(str(exc)) from None
    if body.samples * image.width * image.height > settings.max_request_pixels:
        raise ApiError(f"samples x output size ({body.samples} x {image.width}x{image.height}) exceeds this server's "
                       f"limit of {settings.max_request_pixels} pixels per request")

    seed = body.seed if body.seed is not None else secrets.randbelow(2**32)
    prompt = build_prompt(body.prompt, enhance=body.enhance_prompt, style=style, instance_prompt=entry.instance_prompt)
    negative = build_negative_prompt(body.negative_prompt, style)
    stem = str(uuid.uuid4())
    meta = build_meta(body, model_id=model_id, prompt=prompt, negative_prompt=negative, seed=seed,
                      width=image.width, height=image.height, file_stem=stem,
                      is_sdxl=entry.family == "sdxl", ignored=adapters.ignored) | adapters.meta()
    spec = GenerationSpec(model_id=model_id, init_image=image, prompt=prompt, negative_prompt=negative,
                          width=image.width, height=image.height, strength=body.strength,
                          steps=body.num_inference_steps, guidance_scale=body.guidance_scale, seed=seed,
                          samples=body.samples, scheduler=body.scheduler, use_karras_sigmas=body.use_karras_sigmas,
                          algorithm_type=body.algorithm_type, clip_skip=body.clip_skip, tomesd=body.tomesd,
                          tomesd_ratio=settings.tomesd_ratio, adapters=adapters.spec)
    payload = JobPayload(spec, stem, body.base64, body.temp, body.safety_checker, body.safety_checker_type)
    track_id = None if body.track_id is None else str(body.track_id)
    try:
        item = await asyncio.to_thread(state.dispatcher.submit, payload, meta, body.webhook, track_id)
    except QueueFull:
        raise _queue_full(settings.max_queue) from None
    return item.job_id, item


@router.post(PATHS[0], summary="Image to image (ModelsLab v6 compatible)", response_model=None, responses=JOB_RESPONSES)
async def img2img(body: Img2ImgRequest, request: Request, state: StateDep) -> dict:
    """Generate images from init_image and prompt; answers success, or processing when it takes too long."""
    require_key(body.key, request, state.settings, state.key_throttle)
    with state.worker.incoming():
        job_id, item = await _submit(body, state)
    request.state.job_id = job_id
    eta = state.worker.eta()
    timeout = state.settings.sync_timeout
    try:
        if timeout > 0:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(item.future)), timeout)
    except asyncio.TimeoutError:
        pass
    except JobFailed as exc:
        raise ApiError(str(exc), http_status=exc.http_status, id=job_id) from None
    row = state.jobs.get(job_id)
    assert row is not None
    if row.status == "success":
        return success_body(row, state.store, state.settings.inline_base64, state.jobs.webhook_status(job_id))
    return processing_body(row, state.store, eta, state.settings.base_url())


for _alias in PATHS[1:]:
    router.add_api_route(_alias, img2img, methods=["POST"], include_in_schema=False)
