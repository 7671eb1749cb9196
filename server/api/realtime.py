"""The realtime endpoints: text2img, img2img and inpaint on the one fast model of models.yaml.

No model is named: the entry flagged `realtime: true` runs (else the default model), with its
`realtime_defaults` (few steps, low guidance, its scheduler). Safety checker and prompt enhancement are off
unless asked for, the default negative prompt is not added, the hosted realtime meta is answered (lowercase
`width`/`height` beside `W`/`H`), and the jobs run ahead of queued ordinary jobs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, PrivateAttr, field_validator

from pipelines.config import ModelEntry, RegistryConfig
from pipelines.schedulers import DEFAULT_SCHEDULER
from server.api.coerce import yes_no
from server.api.errors import ApiError
from server.api.fields import GenerationRequest, safety_mode
from server.api.img2img import Img2ImgRequest
from server.api.inpaint import InpaintRequest, required_image
from server.api.submission import TaskRequest
from server.api.text2img import Text2ImgRequest, required_prompt

# Fields of the other endpoints that the realtime model does not take: sent anyway, they are listed in meta.ignored.
NOT_TAKEN = ("model_id", "model", "scheduler", "use_karras_sigmas", "algorithm_type", "tomesd", "clip_skip", "vae",
             "lora_model", "lora_strength", "embeddings_model", "ip_adapter_id", "ip_adapter_image",
             "ip_adapter_scale")
# The hosted realtime meta, plus sdgate's W/H, steps, model_id, ignored and is_sdxl.
META_KEYS = ("prompt", "negative_prompt", "guidance_scale", "n_samples", "seed", "safety_checker",
             "safety_checker_type", "enhance_prompt", "enhance_style", "instant_response", "base64", "temp",
             "file_prefix", "outdir", "webhook", "track_id", "W", "H", "steps", "model_id", "ignored", "is_sdxl")
MODEL_MISSING = "Model not found: realtime"


def _shown(value: Any) -> str:
    return yes_no(value) if isinstance(value, bool) else str(value)


class RealtimeRequest(TaskRequest):
    """What the three realtime endpoints change in the shared fields."""

    PRIORITY = 1
    DEFAULT_NEGATIVE = False
    FLOAT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        **GenerationRequest.FLOAT_RANGES, "guidance_scale": (0, 20), "strength": (0, 1),
    }

    prompt: str = Field(default=None, validate_default=True, description="What the image should show (required).")
    num_inference_steps: int | None = Field(
        default=None, validation_alias=AliasChoices("num_inference_steps", "steps"),
        description="Denoising steps, 1..50; default: the realtime model's own.",
    )
    guidance_scale: float | None = Field(
        default=None, description="Guidance scale, 0..20 (0 or 1: no guidance); default: the realtime model's own."
    )
    safety_checker: bool = Field(default=False, description="NSFW check on outputs (off by default here).")
    safety_checker_type: Literal["blur", "sensitive_content_text", "pixelate", "black"] = Field(
        default="black", description="How flagged images are replaced."
    )
    enhance_prompt: bool = Field(default=False, description="Append the quality suffix to the prompt (off here).")
    _not_taken: list[str] = PrivateAttr(default_factory=list)

    @field_validator("prompt", mode="before")
    @classmethod
    def check_prompt(cls, value: Any) -> str:
        return required_prompt(value)

    @field_validator("safety_checker_type", mode="before")
    @classmethod
    def check_safety_checker_type(cls, value: Any) -> str:
        return safety_mode(value, "black")

    def choose_model(self, config: RegistryConfig) -> tuple[str, ModelEntry]:
        model_id = config.realtime_model_id()
        if model_id is None:
            raise ApiError(MODEL_MISSING)
        return model_id, config.models[model_id]

    def for_model(self, entry: ModelEntry) -> TaskRequest:
        defaults = entry.realtime_defaults
        sent = [f"{name}:{_shown(getattr(self, name))}" for name in NOT_TAKEN if name in self.model_fields_set]
        unset = {name: type(self).model_fields[name].default for name in NOT_TAKEN}
        resolved = self.model_copy(update={
            **unset,
            "tomesd": False,
            "use_karras_sigmas": False,
            "num_inference_steps": self.num_inference_steps or defaults.steps,
            "guidance_scale": defaults.guidance_scale if self.guidance_scale is None else self.guidance_scale,
            "scheduler": defaults.scheduler or DEFAULT_SCHEDULER,
        })
        resolved._not_taken = sent
        return resolved

    def ignored_options(self) -> list[str]:
        return self._not_taken + super().ignored_options()

    def _meta(self, **values: Any) -> dict[str, Any]:
        shared = super()._meta(**values)
        return {key: shared[key] for key in META_KEYS} | {"width": shared["W"], "height": shared["H"]}


class RealtimeText2ImgRequest(RealtimeRequest, Text2ImgRequest):
    """Body of POST /api/v6/realtime/text2img."""


class RealtimeImg2ImgRequest(RealtimeRequest, Img2ImgRequest):
    """Body of POST /api/v6/realtime/img2img: the output follows init_image."""

    init_image: str = Field(default=None, validate_default=True, description="URL (or base64) of the image to change.")

    @field_validator("init_image", mode="before")
    @classmethod
    def check_init_image(cls, value: Any, info: Any) -> str:
        return required_image(value, info)


class RealtimeInpaintRequest(RealtimeRequest, InpaintRequest):
    """Body of POST /api/v6/realtime/inpaint."""


class ImageEditingInpaintRequest(RealtimeInpaintRequest):
    """Body of POST /api/v6/image_editing/inpaint: realtime inpaint with that endpoint's own defaults
    (30 steps, guidance 1..5 defaulting to 5)."""

    FLOAT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {**RealtimeRequest.FLOAT_RANGES, "guidance_scale": (1, 5)}

    num_inference_steps: int | None = Field(
        default=30, validation_alias=AliasChoices("num_inference_steps", "steps"), description="Denoising steps, 1..50."
    )
    guidance_scale: float | None = Field(default=5.0, description="Guidance scale, 1..5.")
