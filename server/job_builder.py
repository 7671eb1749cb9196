"""Translate an Img2ImgRequest (hosted field names) into a JobPayload and its meta: every check that can
refuse a request before a job exists happens here, in the order a client would expect to hear about it."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pipelines.images import ImageError, decode_image, fit_to_output
from pipelines.prompts import UnknownStyle, build_negative_prompt, build_prompt, get_style
from pipelines.registry import ModelNotFound
from pipelines.spec import GenerationSpec
from server.adapter_fields import resolve_adapters
from server.errors import ApiError
from server.init_image import load_image_bytes
from server.job_codec import JobPayload
from server.responses import build_meta
from server.schemas import Img2ImgRequest
from server.state import AppState
from server.url_guard import UrlFetchFailed, UrlRefused


@dataclass(frozen=True)
class NewJob:
    payload: JobPayload
    meta: dict[str, Any]
    webhook: str | None
    track_id: str | None


def _check_limits(body: Img2ImgRequest, state: AppState) -> None:
    limit = state.settings.max_prompt_chars
    for name, text in (("prompt", body.prompt), ("negative_prompt", body.negative_prompt or "")):
        if len(text) > limit:
            raise ApiError(f"{name} is longer than {limit} characters")
    if body.safety_checker and state.safety is None:
        raise ApiError(
            "safety_checker is on but this server has no NSFW detector installed; "
            "send safety_checker: no, or ask the operator to install sdgate[safety]"
        )


async def _check_webhook(url: str | None, state: AppState) -> None:
    if url is None:
        return
    try:
        await state.url_guard.pin(url)
    except (UrlRefused, UrlFetchFailed):
        raise ApiError("webhook must be a public http(s) URL") from None


async def _init_image(body: Img2ImgRequest, state: AppState) -> Image.Image:
    settings = state.settings
    data = await load_image_bytes(body.init_image, base64_mode=body.base64, guard=state.url_guard)
    try:
        image = await asyncio.to_thread(decode_image, data, max_pixels=settings.max_image_pixels)
        image = await asyncio.to_thread(fit_to_output, image, settings.max_side)
    except ImageError as exc:
        raise ApiError(str(exc)) from None
    if body.samples * image.width * image.height > settings.max_request_pixels:
        raise ApiError(f"samples x output size ({body.samples} x {image.width}x{image.height}) exceeds this server's "
                       f"limit of {settings.max_request_pixels} pixels per request")
    return image


async def build_job(body: Img2ImgRequest, state: AppState) -> NewJob:
    """Checks, fetches and resolves everything a job needs; raises ApiError with the client's message."""
    _check_limits(body, state)
    model_id = body.model_id or state.registry.config.default_model_id() or ""
    try:
        entry = state.registry.entry(model_id)
    except ModelNotFound as exc:
        raise ApiError(str(exc)) from None
    await _check_webhook(body.webhook, state)
    adapters = await resolve_adapters(body, state.registry.config, model_id, state.settings, state.url_guard)
    try:
        style = get_style(body.enhance_style) if body.enhance_style else None
    except UnknownStyle as exc:
        raise ApiError(str(exc)) from None
    image = await _init_image(body, state)

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
                          tomesd_ratio=state.settings.tomesd_ratio, adapters=adapters.spec)
    payload = JobPayload(spec, stem, body.base64, body.temp, body.safety_checker, body.safety_checker_type)
    return NewJob(payload, meta, body.webhook, None if body.track_id is None else str(body.track_id))
