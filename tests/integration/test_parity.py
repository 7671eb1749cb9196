"""The image served over HTTP is pixel-identical to a direct diffusers call with the same inputs and seed."""

import io
from pathlib import Path

import numpy as np
import pytest
import tomesd
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline, UniPCMultistepScheduler
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import png_bytes


def served_pixels(client: TestClient, url: str) -> np.ndarray:
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def direct_call(pipe_cls: type, folder: Path, meta: dict, init: Image.Image, samples: int) -> list[np.ndarray]:
    """Plain diffusers with the request's defaults spelled out: UniPC + karras sigmas, tomesd at ratio 0.5."""
    pipe = pipe_cls.from_pretrained(folder, local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    tomesd.apply_patch(pipe, ratio=0.5, use_rand=False)
    images = pipe(
        prompt=meta["prompt"],
        negative_prompt=meta["negative_prompt"],
        image=init,
        strength=meta["strength"],
        num_inference_steps=meta["steps"],
        guidance_scale=meta["guidance_scale"],
        num_images_per_prompt=samples,
        generator=[torch.Generator("cpu").manual_seed(meta["seed"] + i) for i in range(samples)],
    ).images
    return [np.asarray(image) for image in images]


@pytest.mark.parametrize(
    "model_id, pipe_cls", [("tiny-sd15", StableDiffusionImg2ImgPipeline), ("tiny-sdxl", StableDiffusionXLImg2ImgPipeline)]
)
def test_http_output_equals_direct_diffusers(
    client: TestClient, body: dict, tiny_dir: Path, model_id: str, pipe_cls: type
) -> None:
    body.update(model_id=model_id, samples="2", strength="0.6", guidance_scale="6", seed="42")
    answer = client.post("/api/v6/images/img2img", json=body).json()
    assert answer["status"] == "success", answer
    assert answer["meta"]["is_sdxl"] is (model_id == "tiny-sdxl") and answer["meta"]["karras_applied"] is True
    init = Image.open(io.BytesIO(png_bytes())).convert("RGB")
    expected = direct_call(pipe_cls, tiny_dir / model_id, answer["meta"], init, samples=2)
    for url, reference in zip(answer["output"], expected, strict=True):
        assert np.array_equal(served_pixels(client, url), reference)
    # The two samples really come from different seeds.
    assert not np.array_equal(expected[0], expected[1])


def test_single_file_model_serves_the_same_images(client: TestClient, body: dict) -> None:
    folder = client.post("/api/v6/images/img2img", json=body).json()
    single = client.post("/api/v6/images/img2img", json={**body, "model_id": "tiny-sd15-single"}).json()
    assert folder["status"] == single["status"] == "success"
    assert np.array_equal(served_pixels(client, folder["output"][0]), served_pixels(client, single["output"][0]))


def test_same_seed_same_bytes_other_seed_other_image(client: TestClient, body: dict) -> None:
    first = client.post("/api/v6/images/img2img", json=body).json()
    again = client.post("/api/v6/images/img2img", json=body).json()
    other = client.post("/api/v6/images/img2img", json={**body, "seed": 99}).json()
    a, b, c = (served_pixels(client, r["output"][0]) for r in (first, again, other))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
