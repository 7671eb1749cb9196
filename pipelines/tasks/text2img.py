"""text2img: images from the prompt alone, at the requested size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from pipelines.spec import TaskSpec


@dataclass(frozen=True)
class Text2ImgSpec(TaskSpec):
    task = "text2img"
    pipelines = {"sd15": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}

    def call_arguments(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height}
