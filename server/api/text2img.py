"""text2img: the hosted prompt-only request, converted into a Text2ImgSpec."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from pipelines.tasks.text2img import Text2ImgSpec
from server.api.coerce import to_int
from server.api.submission import JobContext, TaskInputs, TaskRequest

MIN_SIDE = 64
TEXT2IMG_EXAMPLE = {
    "key": "your-api-key",
    "model_id": "tiny-sd15",
    "prompt": "a red fox in snow",
    "negative_prompt": None,
    "width": "64",
    "height": "64",
    "samples": "1",
    "num_inference_steps": "8",
    "guidance_scale": 7.5,
    "seed": None,
    "base64": "no",
}


def required_prompt(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise ValueError("prompt must be a string")
    if value is None or not value.strip():
        raise ValueError("The prompt field is required.")
    return value


class Text2ImgRequest(TaskRequest):
    """Body of POST /api/v6/images/text2img: the shared fields plus the output size."""

    model_config = ConfigDict(json_schema_extra={"examples": [TEXT2IMG_EXAMPLE]})

    spec_type = Text2ImgSpec
    META_NO_EFFECT = ("multi_lingual", "panorama", "self_attention", "upscale", "highres_fix", "watermark")

    prompt: str = Field(default=None, validate_default=True, description="What the image should show (required).")
    width: int = Field(default=512, description="Output width, 64..SDGATE_MAX_SIDE, rounded down to a multiple of 8.")
    height: int = Field(default=512, description="Output height, 64..SDGATE_MAX_SIDE, rounded down to a multiple of 8.")

    @field_validator("prompt", mode="before")
    @classmethod
    def check_prompt(cls, value: Any) -> str:
        return required_prompt(value)

    @field_validator("width", "height", mode="before")
    @classmethod
    def check_side(cls, value: Any, info: ValidationInfo) -> int:
        name = info.field_name
        assert name is not None
        if value is None or value == "":
            return 512
        side = to_int(name, value)
        high = (info.context or {}).get("max_side", 1024)
        if not MIN_SIDE <= side <= high:
            raise ValueError(f"{name} must be between {MIN_SIDE} and {high}")
        return side - side % 8

    async def task_inputs(self, ctx: JobContext) -> TaskInputs:
        return TaskInputs(self.width, self.height)
