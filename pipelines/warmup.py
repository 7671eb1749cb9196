"""Warm-up: load a model and run one tiny generation, so the first real request pays no load or first-call cost."""

from __future__ import annotations

from PIL import Image

from pipelines.generate import run
from pipelines.registry import ModelRegistry
from pipelines.tasks.img2img import Img2ImgSpec


def warm_up(registry: ModelRegistry, model_id: str) -> float:
    """Runs on the GPU worker thread. Returns the model's load seconds (0 if it was already loaded)."""
    model = registry.get(model_id)
    side = 64
    image = Image.new("RGB", (side, side), (127, 127, 127))
    run(model, Img2ImgSpec(model_id, "warm-up", "", side, side, init_image=image, strength=1.0, steps=1, samples=1))
    return model.load_seconds
