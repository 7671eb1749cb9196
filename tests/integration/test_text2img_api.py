"""POST /api/v6/images/text2img and its aliases: parity with diffusers, the hosted fields, errors and shapes."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import tomesd
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UniPCMultistepScheduler
from fastapi.testclient import TestClient
from PIL import Image

from tests.integration.test_img2img_api import app_client, is_error

API = "/api/v6/images/text2img"
ALIASES = ["/api/v3/text2img", "/api/v3/dreambooth", "/api/v4/dreambooth", "/api/v7/images/text-to-image"]


@pytest.fixture
def t2i() -> dict:
    return {"key": "any", "model_id": "tiny-sd15", "prompt": "a red fox in snow", "width": "72", "height": "64",
            "num_inference_steps": "4", "seed": "1234"}


def served(client: TestClient, url: str) -> np.ndarray:
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


@pytest.mark.parametrize(
    "model_id, pipe_cls", [("tiny-sd15", StableDiffusionPipeline), ("tiny-sdxl", StableDiffusionXLPipeline)]
)
def test_http_output_equals_direct_diffusers(client: TestClient, t2i: dict, tiny_dir: Path, model_id: str,
                                              pipe_cls: type) -> None:
    t2i.update(model_id=model_id, samples="2", guidance_scale="6", seed="42")
    answer = client.post(API, json=t2i).json()
    assert answer["status"] == "success", answer
    meta = answer["meta"]
    assert (meta["W"], meta["H"]) == (72, 64) and meta["is_sdxl"] is (model_id == "tiny-sdxl")
    # Plain diffusers with the request's defaults spelled out: UniPC + karras sigmas, tomesd at ratio 0.5.
    pipe = pipe_cls.from_pretrained(tiny_dir / model_id, local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    tomesd.apply_patch(pipe, ratio=0.5, use_rand=False)
    expected = pipe(prompt=meta["prompt"], negative_prompt=meta["negative_prompt"], width=72, height=64,
                    num_inference_steps=4, guidance_scale=6.0, num_images_per_prompt=2,
                    generator=[torch.Generator("cpu").manual_seed(42 + i) for i in range(2)]).images
    for url, reference in zip(answer["output"], expected, strict=True):
        assert np.array_equal(served(client, url), np.asarray(reference))
    assert not np.array_equal(np.asarray(expected[0]), np.asarray(expected[1]))


def test_hosted_meta_keys_and_size_rounding(client: TestClient, t2i: dict) -> None:
    answer = client.post(API, json={**t2i, "width": "70", "height": 100, "panorama": "no", "upscale": "2",
                                    "highres_fix": True, "init_image": "https://example.com/ignored.png"}).json()
    assert answer["status"] == "success", answer
    meta = answer["meta"]
    hosted = ("prompt model_id negative_prompt scheduler safety_checker W H guidance_scale seed steps n_samples "
              "instant_response ip_adapter_id enhance_prompt ip_adapter_scale ip_adapter_image upscale "
              "use_karras_sigmas algorithm_type safety_checker_type vae lora lora_strength clip_skip watermark temp "
              "base64 webhook track_id id file_prefix is_sdxl multi_lingual panorama self_attention highres_fix "
              "embeddings").split()
    assert set(hosted) <= set(meta)
    assert "init_image" not in meta and "strength" not in meta
    assert (meta["W"], meta["H"]) == (64, 96)
    assert Image.open(io.BytesIO(client.get(answer["output"][0].removeprefix("http://testserver")).content)).size == (
        64, 96)
    assert meta["upscale"] == meta["panorama"] == meta["highres_fix"] == "no"
    assert meta["ignored"] == ["highres_fix:yes", "upscale:2"]


@pytest.mark.parametrize("path", ALIASES)
def test_legacy_and_v7_aliases(client: TestClient, t2i: dict, path: str) -> None:
    answer = client.post(path, json=t2i).json()
    assert answer["status"] == "success" and len(answer["output"]) == 1, answer


def test_steps_alias_and_precedence(client: TestClient, t2i: dict) -> None:
    t2i.pop("num_inference_steps")
    assert client.post(API, json={**t2i, "steps": "3"}).json()["meta"]["steps"] == 3
    assert client.post(API, json={**t2i, "steps": "3", "num_inference_steps": 5}).json()["meta"]["steps"] == 5


@pytest.mark.parametrize(
    "change, message",
    [
        ({"prompt": None}, "The prompt field is required."),
        ({"prompt": "   "}, "The prompt field is required."),
        ({"prompt": ["a"]}, "prompt must be a string"),
        ({"width": "63"}, "width must be between 64 and 1024"),
        ({"height": 1025}, "height must be between 64 and 1024"),
        ({"width": "wide"}, "width must be a number"),
        ({"samples": 5}, "samples must be between 1 and 4"),
        ({"num_inference_steps": 51}, "num_inference_steps must be between 1 and 50"),
        ({"guidance_scale": 21}, "guidance_scale must be between 1 and 20"),
        ({"model_id": "nope"}, "Model not found: nope"),
        ({"enhance_style": "nope"}, "Unknown enhance_style: nope"),
    ],
)
def test_errors_use_the_hosted_words(client: TestClient, t2i: dict, change: dict, message: str) -> None:
    body = {k: v for k, v in {**t2i, **change}.items() if not (k == "prompt" and v is None)}
    assert is_error(client.post(API, json=body).json(), message)


def test_missing_prompt_field(client: TestClient, t2i: dict) -> None:
    t2i.pop("prompt")
    assert is_error(client.post(API, json=t2i).json(), "The prompt field is required.")


def test_model_choice_rule(client: TestClient, t2i: dict, tiny_dir: Path, tmp_path: Path) -> None:
    t2i.pop("model_id")
    assert client.post(API, json=t2i).json()["meta"]["model_id"] == "tiny-sd15"  # the default: true model
    assert client.post(API, json={**t2i, "model": "tiny-sdxl"}).json()["meta"]["model_id"] == "tiny-sdxl"
    picked = client.post(API, json={**t2i, "model": "tiny-sdxl", "model_id": "tiny-sd15"}).json()
    assert picked["meta"]["model_id"] == "tiny-sd15"
    no_default = tmp_path / "models.yaml"
    no_default.write_text((tiny_dir / "models.yaml").read_text().replace("default: true", "default: false"))
    with app_client(tiny_dir, tmp_path / "data", config=no_default) as strict:
        assert is_error(strict.post(API, json=t2i).json(), "The model id field is required.")
        del t2i["prompt"]
        assert is_error(strict.post("/api/v3/img2img", json=t2i).json())  # img2img follows the same rule


def test_query_string_request_with_key_header(tiny_dir: Path, tmp_path: Path) -> None:
    """The 2023 StableDiffusionAPI client: empty body, every field in the URL, the key in a `key:` header."""
    with app_client(tiny_dir, tmp_path, api_keys="k1") as keyed:
        url = "/api/v3/text2img?prompt=a%20red%20cube&width=64&height=64&samples=1&num_inference_steps=2"
        answer = keyed.post(url, headers={"key": "k1"}).json()
        assert answer["status"] == "success" and answer["meta"]["W"] == 64, answer
        assert keyed.post(url + "&key=k1").json()["status"] == "success"
        assert is_error(keyed.post(url, headers={"key": "wrong"}).json(), "Invalid API key")
        assert is_error(keyed.post("/api/v3/text2img", headers={"key": "k1"}).json(), "Invalid JSON body")


def test_instant_response_answers_processing_then_fetch(client: TestClient, t2i: dict) -> None:
    answer = client.post("/api/v3/dreambooth", json={**t2i, "instant_response": "yes"}).json()
    assert answer["status"] == "processing" and answer["meta"]["instant_response"] == "yes"
    assert answer["fetch_result"].endswith(f"/api/v6/images/fetch/{answer['id']}")
    deadline = time.monotonic() + 60
    while (done := client.post(f"/api/v3/dreambooth/fetch/{answer['id']}", json={"key": "x"}).json())["status"] != \
            "success":
        assert done["status"] == "processing" and time.monotonic() < deadline
        time.sleep(0.1)
    assert done["output"] == answer["future_links"]


def test_v7_jobs_are_fetched_on_v7(tiny_dir: Path, tmp_path: Path, t2i: dict) -> None:
    with app_client(tiny_dir, tmp_path, sync_timeout=0) as async_client:
        answer = async_client.post("/api/v7/images/text-to-image", json=t2i).json()
        assert answer["fetch_result"] == f"http://testserver/api/v7/images/fetch/{answer['id']}"


def test_every_fetch_path_answers_any_job(client: TestClient, t2i: dict) -> None:
    done = client.post(API, json=t2i).json()
    job_id = done["id"]
    for path in ("/api/v6/images/fetch/{}", "/api/v3/fetch/{}", "/api/v3/dreambooth/fetch/{}",
                 "/api/v4/dreambooth/fetch/{}", "/api/v5/images/fetch/{}", "/api/v7/images/fetch/{}"):
        fetched = client.post(path.format(job_id), json={"key": "x"}).json()
        assert fetched["status"] == "success" and fetched["output"] == done["output"], path
    for path in ("/api/v6/images/fetch", "/api/v4/dreambooth/fetch", "/api/v3/dreambooth/fetch"):
        assert client.post(path, json={"key": "x", "request_id": job_id}).json()["output"] == done["output"], path
    assert client.get(f"/api/v5/images/fetch/{job_id}", headers={"key": "x"}).json()["output"] == done["output"]
    # A fetch by path needs no body: the key may come in a header (an empty POST, as older clients send).
    assert client.post(f"/api/v3/fetch/{job_id}", headers={"key": "x"}).json()["output"] == done["output"]


def test_model_routes_aliases(client: TestClient) -> None:
    assert client.post("/api/v3/dreambooth/model_list", json={"key": "x"}).json() == client.post(
        "/api/v4/dreambooth/model_list", json={"key": "x"}).json()
    assert client.post("/api/v4/dreambooth/model_reload", json={"key": "x", "model_id": "tiny-sd15"}).json()[
        "status"] in ("success", "processing")
