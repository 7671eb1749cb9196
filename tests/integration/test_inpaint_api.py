"""POST /api/v6/images/inpaint and its aliases: both modes, mask rules, parity with diffusers, adapters,
batching, errors and a queued job that survives a restart."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
import tomesd
import torch
from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline, UniPCMultistepScheduler
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import ImageServer, png_bytes
from tests.integration.test_batching import _check_batched_like_unbatched
from tests.integration.test_img2img_api import app_client, is_error

API = "/api/v6/images/inpaint"
ALIASES = ["/api/v3/inpaint", "/api/v3/dreambooth/inpaint", "/api/v4/dreambooth/inpaint", "/api/v7/images/inpaint"]
INPAINTING_MODEL = "Model tiny-sd15-inpaint is an inpainting model: send it to the inpaint endpoint"
# Each model at a size it works at, and the mode it must run in.
MODES = [("tiny-sd15", 32, "blend"), ("tiny-sdxl", 64, "blend"), ("tiny-sd15-inpaint", 32, "native"),
         ("tiny-sdxl-inpaint", 64, "native")]


def gradient(size: int = 32) -> Image.Image:
    return Image.open(io.BytesIO(png_bytes((size, size)))).convert("RGB")


def half_mask(size: int = 32, keep: int = 0, repaint: int = 255, mode: str = "L") -> Image.Image:
    """Left half `keep`, right half `repaint`."""
    mask = Image.new("L", (size, size), keep)
    mask.paste(repaint, (size // 2, 0, size, size))
    return mask.convert(mode)


def b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def request(model_id: str = "tiny-sd15", size: int = 32, mask: Image.Image | None = None, **changes: object) -> dict:
    """A small inpaint body, images inline; the mask defaults to keep-left / repaint-right."""
    return {"key": "k", "model_id": model_id, "prompt": "a cat on a bench", "init_image": b64(gradient(size)),
            "mask_image": b64(mask if mask is not None else half_mask(size)), "base64": "yes", "steps": "3",
            "seed": "1234", "safety_checker": "no", **changes}


def pixels(client: TestClient, answer: dict, index: int = 0) -> np.ndarray:
    assert answer["status"] == "success", answer
    response = client.get(answer["output"][index].removeprefix("http://testserver"))
    assert response.status_code == 200
    data = base64.b64decode(response.text) if answer["output"][index].endswith(".base64") else response.content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def split(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = image.shape[1] // 2
    return image[:, :half], image[:, half:]


def assert_kept_left_repainted_right(out: np.ndarray, size: int = 32) -> None:
    kept_in, repaint_in = split(np.asarray(gradient(size)).astype(int))
    kept_out, repaint_out = split(out)
    assert np.array_equal(kept_out, kept_in)
    assert np.abs(repaint_out - repaint_in).mean() > 5


@pytest.mark.parametrize("model_id, size, mode", MODES)
def test_each_mode_keeps_black_exactly_and_repaints_white(client: TestClient, model_id: str, size: int,
                                                          mode: str) -> None:
    answer = client.post(API, json=request(model_id, size)).json()
    assert answer["status"] == "success", answer
    meta = answer["meta"]
    assert meta["inpaint_mode"] == mode and meta["inpaint_overlay"] == "yes"
    assert (meta["W"], meta["H"]) == (size, size) and meta["mask_image"] == "base64" and meta["strength"] == 0.7
    assert_kept_left_repainted_right(pixels(client, answer), size)


def test_all_black_mask_returns_the_input_and_all_white_is_allowed(client: TestClient) -> None:
    black = client.post(API, json=request(mask=Image.new("L", (32, 32), 0))).json()
    assert np.array_equal(pixels(client, black), np.asarray(gradient()).astype(int))
    white = client.post(API, json=request(mask=Image.new("L", (32, 32), 255))).json()
    assert np.abs(pixels(client, white) - np.asarray(gradient()).astype(int)).mean() > 5


@pytest.mark.parametrize(
    "mask",
    [
        half_mask(16),  # another size: resized to the output
        # RGBA: read by its RGB values (alpha opposite to them, to show it is ignored); 200 repaints, 100 keeps.
        Image.merge("RGBA", (*half_mask(32, 100, 200, "RGB").split(), half_mask(32, 255, 0))),
        half_mask(32, 127, 128),  # greyscale binarised at 50 %: 127 keeps, 128 repaints
    ],
    ids=["16x16", "rgba", "grey-127-128"],
)
def test_masks_of_other_sizes_and_modes(client: TestClient, mask: Image.Image) -> None:
    assert_kept_left_repainted_right(pixels(client, client.post(API, json=request(mask=mask)).json()))


@pytest.mark.parametrize(
    "model_id, size, pipe_cls",
    [("tiny-sd15-inpaint", 32, StableDiffusionInpaintPipeline),
     ("tiny-sdxl-inpaint", 64, StableDiffusionXLInpaintPipeline),
     ("tiny-sd15", 32, StableDiffusionInpaintPipeline), ("tiny-sdxl", 64, StableDiffusionXLInpaintPipeline)],
)
def test_http_output_equals_direct_diffusers(client: TestClient, tiny_dir: Path, model_id: str, size: int,
                                             pipe_cls: type) -> None:
    init, mask = gradient(size), half_mask(size)
    body = request(model_id, size, samples="2", guidance_scale="6", strength="0.8", seed="42", steps="4")
    raw = client.post(API, json={**body, "inpaint_overlay": "no"}).json()
    pasted = client.post(API, json=body).json()
    assert raw["meta"]["inpaint_overlay"] == "no" and pasted["meta"]["inpaint_overlay"] == "yes"
    meta = raw["meta"]
    # Plain diffusers with sdgate's defaults spelled out: UniPC + karras sigmas, tomesd at ratio 0.5.
    pipe = pipe_cls.from_pretrained(tiny_dir / model_id, local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    tomesd.apply_patch(pipe, ratio=0.5, use_rand=False)
    # sdgate passes the input once per sample (the inpaint pipelines VAE-encode each input image with its own
    # generator), so sample i depends on seed + i alone, whether the job runs alone or batched.
    expected = pipe(prompt=[meta["prompt"]] * 2, negative_prompt=[meta["negative_prompt"]] * 2, image=[init] * 2,
                    mask_image=[mask] * 2, width=size, height=size, strength=0.8, num_inference_steps=4,
                    guidance_scale=6.0, num_images_per_prompt=1,
                    generator=[torch.Generator("cpu").manual_seed(42 + i) for i in range(2)]).images
    for index, reference in enumerate(expected):
        assert np.array_equal(pixels(client, raw, index), np.asarray(reference).astype(int))
        overlaid = pipe.image_processor.apply_overlay(mask, init, reference)
        assert np.array_equal(pixels(client, pasted, index), np.asarray(overlaid).astype(int))
    assert not np.array_equal(np.asarray(expected[0]), np.asarray(expected[1]))


@pytest.mark.parametrize(
    "model_id, adapter",
    [("tiny-sd15", "lora"), ("tiny-sd15", "vae"), ("tiny-sd15", "ip_adapter"), ("tiny-sd15-inpaint", "lora"),
     ("tiny-sd15-inpaint", "vae"), ("tiny-sd15-inpaint", "ip_adapter")],
)
def test_adapters_work_on_inpaint_jobs(client: TestClient, image_server: ImageServer, model_id: str,
                                       adapter: str) -> None:
    changes = {
        "lora": {"lora_model": "tiny-lora-a"},
        "vae": {"vae": "tiny-vae"},
        "ip_adapter": {"ip_adapter_id": "ip-adapter_sd15", "ip_adapter_image": image_server.url("init.png")},
    }[adapter]
    plain = client.post(API, json=request(model_id)).json()
    adapted = client.post(API, json=request(model_id, **changes)).json()
    assert adapted["status"] == "success" and adapted["meta"]["ignored"] == [], adapted
    assert adapted["meta"]["inpaint_mode"] == plain["meta"]["inpaint_mode"]
    with_adapter, without = pixels(client, adapted), pixels(client, plain)
    assert not np.array_equal(with_adapter, without)
    assert np.array_equal(split(with_adapter)[0], split(without)[0])  # the kept half is still the input


@pytest.mark.parametrize("samples", [[1, 1, 1, 1], [1, 2, 1, 2]],
                         ids=["one-each", "mixed"])
def test_concurrent_inpaint_requests_are_batched_and_match_unbatched(tiny_dir: Path, tmp_path: Path,
                                                                     samples: list[int]) -> None:
    bodies = [request("tiny-sd15-inpaint", seed=300 + i, samples=count, prompt=f"job {i}",
                      mask=half_mask() if i % 2 else Image.new("L", (32, 32), 255))
              for i, count in enumerate(samples)]
    slow = {**bodies[0], "steps": 50, "strength": 1, "seed": 1}
    _check_batched_like_unbatched(tiny_dir, tmp_path, API, bodies, slow)


@pytest.mark.parametrize("path", ALIASES)
def test_legacy_and_v7_aliases(client: TestClient, path: str) -> None:
    answer = client.post(path, json=request()).json()
    assert answer["status"] == "success" and answer["meta"]["inpaint_mode"] == "blend", answer


def test_steps_alias_and_precedence(client: TestClient) -> None:
    assert client.post(API, json=request(steps="3")).json()["meta"]["steps"] == 3
    assert client.post(API, json=request(steps="3", num_inference_steps=2)).json()["meta"]["steps"] == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"init_image": None}, "The init image field is required."),
        ({"init_image": ""}, "The init image field is required."),
        ({"mask_image": None}, "The mask image field is required."),
        ({"mask_image": ""}, "The mask image field is required."),
        ({"mask_image": b64(half_mask())}, "mask image must be a valid url when base64 is a representation of false"),
        ({"mask_image": "not a url"}, "mask image must be a valid url when base64 is a representation of false"),
        ({"mask_image": "missing.png"}, "Unable to fetch image from provided URL"),
        ({"mask_image": "http://127.0.0.1:9/mask.png"}, "Unable to fetch image from provided URL"),
        ({"strength": 1.5}, "strength must be between 0 and 1"),
    ],
)
def test_errors_use_the_hosted_words(client: TestClient, image_server: ImageServer, change: dict,
                                     message: str) -> None:
    mask_url = image_server.add("mask.png", base64.b64decode(b64(half_mask())))
    body = {**request(base64="no", init_image=image_server.url("init.png"), mask_image=mask_url), **change}
    if body["mask_image"] == "missing.png":
        body["mask_image"] = image_server.url("missing.png")
    answer = client.post(API, json=body).json()
    assert is_error(answer, message), answer
    if message.endswith("required."):  # a field left out entirely reads the same as null and ""
        field = next(iter(change))
        assert is_error(client.post(API, json={k: v for k, v in body.items() if k != field}).json(), message)


def test_url_images_work(client: TestClient, image_server: ImageServer) -> None:
    mask_url = image_server.add("mask-16.png", base64.b64decode(b64(half_mask(16))))
    body = request(base64="no", init_image=image_server.url("init.png"), mask_image=mask_url)
    answer = client.post(API, json=body).json()
    assert answer["meta"]["mask_image"] == mask_url and answer["meta"]["init_image"] == image_server.url("init.png")
    assert_kept_left_repainted_right(pixels(client, answer))


@pytest.mark.parametrize("path", ["/api/v6/images/text2img", "/api/v6/images/img2img"])
def test_inpainting_models_refuse_other_endpoints(client: TestClient, path: str) -> None:
    body = {"key": "k", "model_id": "tiny-sd15-inpaint", "prompt": "a cat", "init_image": b64(gradient()),
            "base64": "yes", "width": 64, "height": 64, "steps": 2}
    assert is_error(client.post(path, json=body).json(), INPAINTING_MODEL)


def test_queued_job_keeps_both_images_and_survives_a_restart(client: TestClient, tiny_dir: Path,
                                                             tmp_path: Path) -> None:
    body = request(seed="77")
    expected = pixels(client, client.post(API, json=body).json())
    slow = {"key": "k", "model_id": "tiny-sd15", "prompt": "slow", "init_image": b64(gradient()), "base64": "yes",
            "num_inference_steps": 50, "strength": 1, "samples": 2, "seed": 1, "safety_checker": "no"}
    with app_client(tiny_dir, tmp_path, sync_timeout=0) as first:
        assert first.post("/api/v6/images/img2img", json=slow).json()["status"] == "processing"
        queued = first.post(API, json=body).json()
        assert queued["status"] == "processing"
        assert queued["fetch_result"].endswith(f"/api/v6/images/fetch/{queued['id']}")
        jobs = first.app.state.sdgate.jobs
        assert jobs.get(queued["id"]).status == "queued"
        stored = jobs.inputs(queued["id"])
        assert set(stored) == {"init_image", "mask_image"}
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored["init_image"]))), np.asarray(gradient()))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored["mask_image"]))), np.asarray(half_mask()))
    # The server stopped with the inpaint job still queued; the next start on the same data runs it.
    with app_client(tiny_dir, tmp_path, sync_timeout=0) as second:
        deadline = time.monotonic() + 60
        while (done := second.post(f"/api/v6/images/fetch/{queued['id']}", json={"key": "k"}).json())["status"] \
                == "processing":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert done["status"] == "success" and done["meta"]["inpaint_mode"] == "blend", done
        assert np.array_equal(pixels(second, done), expected)


def test_sample_i_is_reproducible_from_seed_plus_i(client: TestClient) -> None:
    pair = client.post(API, json=request("tiny-sd15-inpaint", seed="42", samples="2")).json()
    second = client.post(API, json=request("tiny-sd15-inpaint", seed="43", samples="1")).json()
    assert np.array_equal(pixels(client, pair, 1), pixels(client, second, 0))
