"""Warm-up: load a model and run one tiny generation, so the first real request pays no load or first-call cost."""

from __future__ import annotations

from PIL import Image

from pipelines.generate import run
from pipelines.registry import ModelRegistry
from pipelines.spec import TaskSpec
from pipelines.tasks.img2img import Img2ImgSpec
from pipelines.tasks.inpaint import InpaintSpec


def warm_up(registry: ModelRegistry, model_id: str) -> float:
    """Runs on the GPU worker thread. Returns the model's load seconds (0 if it was already loaded)."""
    model = registry.get(model_id)
    side = 64
    image = Image.new("RGB", (side, side), (127, 127, 127))
    spec: TaskSpec
    if model.entry.inpainting:  # its 9-channel UNet runs inpaint only
        mask = Image.new("L", (side, side), 255)
        spec = InpaintSpec(model_id, "warm-up", "", side, side, init_image=image, mask_image=mask, strength=1.0,
                           steps=1)
    else:
        spec = Img2ImgSpec(model_id, "warm-up", "", side, side, init_image=image, strength=1.0, steps=1)
    run(model, spec)
    return model.load_seconds
