"""img2img: the hosted `init_image` + `strength` request, converted into an Img2ImgSpec."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from PIL import Image
from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipelines.images import ImageError, decode_image, fit_to_output
from pipelines.tasks.img2img import Img2ImgSpec
from server.api.errors import ApiError
from server.api.fields import GenerationRequest, ranged
from server.api.images import load_image_bytes
from server.api.submission import JobContext, TaskInputs, TaskRequest

NO_DENOISING_STEP = "strength x num_inference_steps gives no denoising step; raise strength or num_inference_steps"
# A 16x16 PNG, so the documented example runs as is against the tiny test model.
EXAMPLE_INIT_IMAGE = (
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAHklEQVR42mNkYFggwMBAPGJhEGAgCYxqGNUwdDQAAH+qAr5/bZ3sAAAAAElFTkSuQmCC"
)
IMG2IMG_EXAMPLE = {
    "key": "your-api-key",
    "model_id": "tiny-sd15",
    "prompt": "a red cat",
    "negative_prompt": None,
    "init_image": EXAMPLE_INIT_IMAGE,
    "base64": "yes",
    "samples": "1",
    "num_inference_steps": "8",
    "strength": 0.7,
    "guidance_scale": 7.5,
    "seed": None,
    "scheduler": "UniPCMultistepScheduler",
}


class Img2ImgRequest(TaskRequest):
    """Body of POST /api/v6/images/img2img: the shared fields plus init_image and strength."""

    model_config = ConfigDict(json_schema_extra={"examples": [IMG2IMG_EXAMPLE]})

    spec_type = Img2ImgSpec
    FLOAT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {**GenerationRequest.FLOAT_RANGES, "strength": (0, 1)}
    META_NO_EFFECT = ("multi_lingual", "upscale", "watermark")

    init_image: str = Field(description="URL of the starting image; with base64=yes also raw base64 or a data URI.")
    width: Any = Field(default=None, description="Accepted and ignored: the output follows init_image's size.")
    height: Any = Field(default=None, description="Accepted and ignored: the output follows init_image's size.")
    strength: float = Field(default=0.7, description="How much the init image is changed, 0..1.")

    @model_validator(mode="after")
    def check_at_least_one_denoising_step(self) -> Img2ImgRequest:
        # Steps not given yet (realtime: the model's default) are checked once known, in task_inputs.
        if self.num_inference_steps is not None and int(self.num_inference_steps * self.strength) < 1:
            raise ValueError(NO_DENOISING_STEP)
        return self

    @field_validator("strength", mode="before")
    @classmethod
    def check_strength(cls, value: Any, info: ValidationInfo) -> float:
        return ranged(cls, cls.FLOAT_RANGES, value, info, integer=False)

    @field_validator("init_image", mode="before")
    @classmethod
    def check_init_image(cls, value: Any) -> str:
        if value is None or value == "":
            raise ValueError("init_image is required")
        if not isinstance(value, str):
            raise ValueError("init_image must be a string (URL or base64)")
        return value

    async def task_inputs(self, ctx: JobContext) -> TaskInputs:
        """The init image, fetched and decoded; it sets the output size (longest side capped, multiples of 8)."""
        check_denoising_steps(self.num_inference_steps, self.strength)
        image = await fetch_image(self.init_image, "init_image", self.base64, ctx)
        image = await asyncio.to_thread(fit_to_output, image, ctx.settings.max_side)
        return TaskInputs(image.width, image.height, {"init_image": image, "strength": self.strength},
                          {"init_image": shown_as(self.init_image), "strength": self.strength})


def check_denoising_steps(steps: int, strength: float) -> None:
    # Image-based tasks run int(steps * strength) steps; zero would crash inside diffusers.
    if int(steps * strength) < 1:
        raise ApiError(NO_DENOISING_STEP)


async def fetch_image(value: str, field: str, base64_mode: bool, ctx: JobContext) -> Image.Image:
    """An image field's URL or base64, fetched and decoded to RGB (errors name the field)."""
    data = await load_image_bytes(value, base64_mode=base64_mode, guard=ctx.url_guard, field=field)
    try:
        return await asyncio.to_thread(decode_image, data, what=field, max_pixels=ctx.settings.max_image_pixels)
    except ImageError as exc:
        raise ApiError(str(exc)) from None


def shown_as(value: str) -> str:
    """How meta echoes an image field: the URL, or "base64" for inline data."""
    return value if value.startswith(("http://", "https://")) else "base64"
