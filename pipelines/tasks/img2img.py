"""img2img: the init image is noised to `strength` and denoised towards the prompt."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline
from PIL import Image

from pipelines.spec import TaskSpec


@dataclass(frozen=True)
class Img2ImgSpec(TaskSpec):
    """`init_image` is RGB at exactly `width` x `height`."""

    task = "img2img"
    pipelines = {"sd15": StableDiffusionImg2ImgPipeline, "sdxl": StableDiffusionXLImg2ImgPipeline}

    init_image: Image.Image = field(kw_only=True)
    strength: float = field(default=0.7, kw_only=True)

    def call_arguments(self) -> dict[str, Any]:
        return {"strength": self.strength}

    def image_arguments(self) -> dict[str, Image.Image]:
        return {"image": self.init_image}

    def task_batch_key(self) -> tuple[Hashable, ...]:
        return (self.strength,)
