"""A validated request becomes a job: every check that can refuse it before a job exists, in the order a
client would expect to hear about it, then the task spec, output options and meta.

The shared part is written once here; each endpoint's request model adds only `task_inputs()`.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipelines.config import ModelEntry, RegistryConfig
from pipelines.prompts import UnknownStyle, build_negative_prompt, build_prompt, get_style
from pipelines.spec import TaskSpec
from server.api.adapters import resolve_adapters
from server.api.coerce import yes_no
from server.api.errors import ApiError
from server.api.fields import GenerationRequest
from server.io.url_guard import UrlFetchFailed, UrlGuard, UrlRefused
from server.jobs.record import OutputOptions
from server.ops.settings import Settings

MODEL_REQUIRED = "The model id field is required."


@dataclass(frozen=True)
class JobContext:
    """What turning a request into a job may consult: settings, the model registry's config, the URL guard."""

    settings: Settings
    config: RegistryConfig
    url_guard: UrlGuard
    has_safety_checker: bool


@dataclass(frozen=True)
class TaskInputs:
    """What a task adds: the output size, its own spec fields (images included) and its meta keys."""

    width: int
    height: int
    spec_fields: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewJob:
    spec: TaskSpec
    output: OutputOptions
    meta: dict[str, Any]
    webhook: str | None
    track_id: str | None
    priority: int = 0


class TaskRequest(GenerationRequest):
    """A diffusion endpoint's request: the shared fields plus its task's inputs."""

    spec_type: ClassVar[type[TaskSpec]]
    # Jobs with a higher priority are run before queued jobs with a lower one (realtime endpoints).
    PRIORITY: ClassVar[int] = 0
    # The hosted default negative prompt is appended to the request's (not on the realtime endpoints).
    DEFAULT_NEGATIVE: ClassVar[bool] = True

    async def task_inputs(self, ctx: JobContext) -> TaskInputs:
        raise NotImplementedError

    async def to_job(self, ctx: JobContext) -> NewJob:
        """Checks, fetches and resolves everything the job needs; raises ApiError with the client's message."""
        _check_limits(self, ctx)
        model_id, entry = self.choose_model(ctx.config)
        return await self.for_model(entry)._build_job(ctx, model_id, entry)

    def for_model(self, entry: ModelEntry) -> TaskRequest:
        """This request with the model's own defaults filled in (the realtime endpoints have some)."""
        return self

    async def _build_job(self, ctx: JobContext, model_id: str, entry: ModelEntry) -> NewJob:
        if entry.inpainting and not self.spec_type.runs_inpainting_models:
            raise ApiError(f"Model {model_id} is an inpainting model: send it to the inpaint endpoint")
        await _check_webhook(self.webhook, ctx.url_guard)
        adapters = await resolve_adapters(self, ctx.config, model_id, ctx.settings, ctx.url_guard)
        try:
            style = get_style(self.enhance_style) if self.enhance_style else None
        except UnknownStyle as exc:
            raise ApiError(str(exc)) from None
        inputs = await self.task_inputs(ctx)
        if self.samples * inputs.width * inputs.height > ctx.settings.max_request_pixels:
            raise ApiError(f"samples x output size ({self.samples} x {inputs.width}x{inputs.height}) exceeds this "
                           f"server's limit of {ctx.settings.max_request_pixels} pixels per request")

        seed = self.seed if self.seed is not None else secrets.randbelow(2**32)
        prompt = build_prompt(self.prompt, enhance=self.enhance_prompt, style=style,
                              instance_prompt=entry.instance_prompt)
        negative = build_negative_prompt(self.negative_prompt, style, default=self.DEFAULT_NEGATIVE)
        stem = str(uuid.uuid4())
        meta = self._meta(model_id=model_id, prompt=prompt, negative_prompt=negative, seed=seed, width=inputs.width,
                          height=inputs.height, file_stem=stem, is_sdxl=entry.family == "sdxl",
                          ignored=adapters.ignored + self.ignored_options())
        # What the adapters really were replaces the request's echo, where the endpoint's meta has those keys.
        meta |= inputs.meta | {key: value for key, value in adapters.meta().items() if key in meta}
        spec = self.spec_type(
            model_id=model_id, prompt=prompt, negative_prompt=negative, width=inputs.width, height=inputs.height,
            steps=self.num_inference_steps, guidance_scale=self.guidance_scale, seed=seed, samples=self.samples,
            scheduler=self.scheduler, use_karras_sigmas=self.use_karras_sigmas, algorithm_type=self.algorithm_type,
            clip_skip=self.clip_skip, tomesd=self.tomesd, tomesd_ratio=ctx.settings.tomesd_ratio,
            adapters=adapters.spec, **inputs.spec_fields,
        )
        output = OutputOptions(file_stem=stem, images=self.samples, base64=self.base64, temp=self.temp,
                               safety_checker=self.safety_checker, safety_checker_type=self.safety_checker_type)
        track_id = None if self.track_id is None else str(self.track_id)
        return NewJob(spec, output, meta, self.webhook, track_id, self.PRIORITY)

    def choose_model(self, config: RegistryConfig) -> tuple[str, ModelEntry]:
        """model_id, else model (some SDKs send that), else the models.yaml default."""
        model_id = self.model_id or self.model or config.default_model_id()
        if not model_id:
            raise ApiError(MODEL_REQUIRED)
        if model_id not in config.models:
            raise ApiError(f"Model not found: {model_id}")
        return model_id, config.models[model_id]

    def _meta(self, *, model_id: str, prompt: str, negative_prompt: str, seed: int, width: int, height: int,
              file_stem: str, is_sdxl: bool, ignored: list[str]) -> dict[str, Any]:
        """The hosted meta keys shared by the diffusion endpoints, with the values that were really used."""
        return {
            "prompt": prompt,
            "model_id": model_id,
            "scheduler": self.scheduler,
            "safety_checker": yes_no(self.safety_checker),
            "negative_prompt": negative_prompt,
            "W": width,
            "H": height,
            "guidance_scale": self.guidance_scale,
            "steps": self.num_inference_steps,
            "n_samples": self.samples,
            "tomesd": yes_no(self.tomesd),
            "use_karras_sigmas": yes_no(self.use_karras_sigmas),
            "algorithm_type": self.algorithm_type or "no",
            "safety_checker_type": self.safety_checker_type,
            "instant_response": yes_no(self.instant_response),
            "full_url": "no",
            "vae": self.vae,
            "ip_adapter_id": self.ip_adapter_id,
            "enhance_prompt": yes_no(self.enhance_prompt),
            "enhance_style": self.enhance_style,
            "ip_adapter_scale": self.ip_adapter_scale,
            "ip_adapter_image": self.ip_adapter_image,
            "lora": self.lora_model,
            "lora_strength": _lora_strength_echo(self.lora_strength),
            "embeddings": self.embeddings_model,
            "seed": seed,
            "outdir": "out",
            "file_prefix": f"{file_stem}.png",
            "clip_skip": self.clip_skip,
            "temp": yes_no(self.temp),
            "base64": yes_no(self.base64),
            "webhook": self.webhook,
            "track_id": self.track_id,
            "is_sdxl": is_sdxl,
            "ignored": ignored,
            **{name: "no" for name in self.META_NO_EFFECT},
        }


def _lora_strength_echo(values: list[float] | None) -> float | str:
    if not values:
        return 1
    if len(values) == 1:
        return values[0]
    return ",".join(f"{v:g}" for v in values)


def _check_limits(request: GenerationRequest, ctx: JobContext) -> None:
    limit = ctx.settings.max_prompt_chars
    for name, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt or "")):
        if len(text) > limit:
            raise ApiError(f"{name} is longer than {limit} characters")
    if request.safety_checker and not ctx.has_safety_checker:
        raise ApiError(
            "safety_checker is on but this server has no NSFW detector installed; "
            "send safety_checker: no, or ask the operator to check SDGATE_SAFETY_BACKEND (nudenet ships with sdgate)"
        )


async def _check_webhook(url: str | None, guard: UrlGuard) -> None:
    if url is None:
        return
    try:
        await guard.pin(url)
    except (UrlRefused, UrlFetchFailed):
        raise ApiError("webhook must be a public http(s) URL") from None
