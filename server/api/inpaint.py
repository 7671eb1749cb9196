"""inpaint: img2img plus `mask_image` (white repaints, black keeps), converted into an InpaintSpec."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from pipelines.images import fit_to_output, prepare_mask
from pipelines.tasks.inpaint import InpaintSpec
from server.api.coerce import yes_no
from server.api.fields import flag
from server.api.img2img import EXAMPLE_INIT_IMAGE, Img2ImgRequest, check_denoising_steps, fetch_image, shown_as
from server.api.submission import JobContext, TaskInputs

INPAINT_EXAMPLE = {
    "key": "your-api-key",
    "model_id": "tiny-sd15",
    "prompt": "a cat sitting on a bench",
    "init_image": EXAMPLE_INIT_IMAGE,
    "mask_image": EXAMPLE_INIT_IMAGE,
    "base64": "yes",
    "samples": "1",
    "steps": "8",
    "strength": 0.7,
    "seed": None,
}


def required_image(value: Any, info: ValidationInfo) -> str:
    """An image field the endpoint needs: "" counts as absent; the error uses the hosted wording."""
    name = info.field_name
    assert name is not None
    if value is None or value == "":
        raise ValueError(f"The {name.replace('_', ' ')} field is required.")
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string (URL or base64)")
    return value


class InpaintRequest(Img2ImgRequest):
    """Body of POST /api/v6/images/inpaint: img2img's fields plus mask_image; the output follows init_image."""

    model_config = ConfigDict(json_schema_extra={"examples": [INPAINT_EXAMPLE]})

    spec_type = InpaintSpec

    init_image: str = Field(default=None, validate_default=True,
                            description="URL of the image to repaint; with base64=yes also raw base64 or a data URI.")
    mask_image: str = Field(default=None, validate_default=True,
                            description="Mask, same forms as init_image: white is repainted, black is kept.")
    inpaint_overlay: bool = Field(default=True, description="Paste the kept (black) area back from init_image exactly.")

    @field_validator("init_image", mode="before")
    @classmethod
    def check_init_image(cls, value: Any, info: ValidationInfo) -> str:  # replaces img2img's own wording
        return required_image(value, info)

    @field_validator("mask_image", mode="before")
    @classmethod
    def check_mask_image(cls, value: Any, info: ValidationInfo) -> str:
        return required_image(value, info)

    @field_validator("inpaint_overlay", mode="before")
    @classmethod
    def check_overlay(cls, value: Any, info: ValidationInfo) -> bool:
        return flag(cls, value, info)

    async def task_inputs(self, ctx: JobContext) -> TaskInputs:
        """The init image sets the output size; the mask, of any size or mode, is fitted to it."""
        check_denoising_steps(self.num_inference_steps, self.strength)
        image = await fetch_image(self.init_image, "init_image", self.base64, ctx)
        image = await asyncio.to_thread(fit_to_output, image, ctx.settings.max_side)
        mask = await fetch_image(self.mask_image, "mask_image", self.base64, ctx)
        mask = await asyncio.to_thread(prepare_mask, mask, image.size)
        return TaskInputs(
            image.width, image.height,
            {"init_image": image, "mask_image": mask, "strength": self.strength, "overlay": self.inpaint_overlay},
            {"init_image": shown_as(self.init_image), "mask_image": shown_as(self.mask_image),
             "strength": self.strength, "inpaint_overlay": yes_no(self.inpaint_overlay)},
        )
