"""inpaint: repaint where the mask is white, keep where it is black.

Inpainting checkpoints (9-channel UNets) run natively; ordinary checkpoints run diffusers' blend mode on
the same loaded weights (the inpaint view of a 4-channel UNet blends the kept latents back each step).
Either way the kept pixels are then pasted back from the input, so they come back exactly.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline
from PIL import Image

from pipelines.spec import TaskSpec


@dataclass(frozen=True)
class InpaintSpec(TaskSpec):
    """`init_image` is RGB and `mask_image` one binarised channel, both at exactly `width` x `height`."""

    task = "inpaint"
    pipelines = {"sd15": StableDiffusionInpaintPipeline, "sdxl": StableDiffusionXLInpaintPipeline}
    runs_inpainting_models = True
    images_per_sample = True

    init_image: Image.Image = field(kw_only=True)
    mask_image: Image.Image = field(kw_only=True)
    strength: float = field(default=0.7, kw_only=True)
    overlay: bool = field(default=True, kw_only=True)

    def call_arguments(self) -> dict[str, Any]:
        # Without an explicit size the pipeline would use the UNet's native sample size, not the input's.
        return {"strength": self.strength, "width": self.width, "height": self.height}

    def image_arguments(self) -> dict[str, Image.Image]:
        return {"image": self.init_image, "mask_image": self.mask_image}

    def task_batch_key(self) -> tuple[Hashable, ...]:
        return (self.strength, self.overlay)

    def finish(self, pipe: Any, images: list[Image.Image]) -> list[Image.Image]:
        if not self.overlay:
            return images
        return [pipe.image_processor.apply_overlay(self.mask_image, self.init_image, image) for image in images]

    def result_meta(self, pipe: Any) -> dict[str, Any]:
        return {"inpaint_mode": "native" if pipe.unet.config.in_channels == 9 else "blend"}
