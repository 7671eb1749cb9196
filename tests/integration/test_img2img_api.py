"""The img2img route end to end in-process: hosted request forms, response shapes, every error envelope."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL
from fastapi.testclient import TestClient
from PIL import Image

from server.http.app import create_app
from tests.conftest import ImageServer, WebhookReceiver, b64_png, make_settings

API = "/api/v6/images/img2img"
ERROR_KEYS = {"status", "message", "messege"}


def is_error(answer: dict, message: str | None = None) -> bool:
    ok = answer["status"] == "error" and answer["message"] == answer["messege"]
    return ok and (message is None or answer["message"].startswith(message))


@contextlib.contextmanager
def app_client(tiny_dir: Path, data_dir: Path, **overrides: object) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tiny_dir, data_dir, **overrides))) as test_client:
        yield test_client


def test_hosted_example_body_with_strings_succeeds(client: TestClient, image_server: ImageServer) -> None:
    """The API.md seed example, numbers as strings, model_id changed to tiny-sd15 (steps cut for speed)."""
    example = {
        "key": "", "model_id": "tiny-sd15", "prompt": "women playing tennis", "negative_prompt": None,
        "init_image": image_server.url("init-40x36.png"), "samples": "1", "num_inference_steps": "5",
        "safety_checker": "yes", "enhance_prompt": "yes", "guidance_scale": 7.5, "strength": 0.7,
        "scheduler": "UniPCMultistepScheduler", "seed": None, "lora_model": None, "tomesd": "yes",
        "use_karras_sigmas": "yes", "vae": None, "lora_strength": None, "embeddings_model": None,
        "webhook": None, "track_id": None, "width": "512", "height": "512", "multi_lingual": "no",
    }
    answer = client.post(API, json=example).json()
    assert answer["status"] == "success", answer
    assert isinstance(answer["id"], int) and answer["meta"]["id"] == str(answer["id"])
    assert isinstance(answer["generationTime"], float) and answer["generationTime"] > 0
    meta = answer["meta"]
    assert (meta["W"], meta["H"]) == (40, 32)  # init size, rounded down to multiples of 8
    assert 0 <= meta["seed"] < 2**32 and meta["n_samples"] == 1 and meta["steps"] == 5
    assert meta["prompt"].startswith("women playing tennis hyperrealistic, full body")
    assert meta["negative_prompt"].startswith(" (child:1.5)")
    assert meta["file_prefix"].endswith(".png") and meta["ignored"] == []
    assert answer["proxy_links"] == answer["output"] and answer["webhook_status"] == ""
    assert answer["nsfw_content_detected"] is False
    image = client.get(answer["output"][0].removeprefix("http://testserver"))
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (40, 32)
    expected_name = f"0-{meta['file_prefix'].removesuffix('.png')}.png"
    assert answer["output"][0] == f"http://testserver/generations/{expected_name}"


def test_success_has_every_key_of_the_hosted_example(client: TestClient, body: dict) -> None:
    hosted_meta = (
        "prompt model_id scheduler safety_checker negative_prompt W H guidance_scale init_image steps n_samples "
        "strength multi_lingual tomesd use_karras_sigmas algorithm_type safety_checker_type instant_response "
        "full_url upscale vae ip_adapter_id enhance_prompt enhance_style ip_adapter_scale ip_adapter_image lora "
        "lora_strength seed outdir file_prefix clip_skip watermark temp base64"
    ).split()
    answer = client.post(API, json=body).json()
    assert {"status", "generationTime", "id", "output", "proxy_links", "nsfw_content_detected", "webhook_status",
            "meta", "tip"} <= set(answer)
    assert set(hosted_meta) <= set(answer["meta"])


def test_enhance_prompt_no_leaves_prompt_alone(client: TestClient, body: dict) -> None:
    answer = client.post(API, json={**body, "enhance_prompt": "no", "negative_prompt": "blurry"}).json()
    assert answer["meta"]["prompt"] == "a red cat"
    assert answer["meta"]["negative_prompt"].startswith("blurry (child:1.5)")


@pytest.mark.parametrize("path", ["/api/v3/img2img", "/api/v3/dreambooth/img2img", "/api/v4/dreambooth/img2img"])
def test_legacy_aliases(client: TestClient, body: dict, path: str) -> None:
    assert client.post(path, json=body).json()["status"] == "success"


def test_v3_without_model_id_uses_the_default_model(client: TestClient, body: dict) -> None:
    body.pop("model_id")
    answer = client.post("/api/v3/img2img", json=body).json()
    assert answer["status"] == "success" and answer["meta"]["model_id"] == "tiny-sd15"


def test_base64_input_and_base64_output_links(client: TestClient, body: dict) -> None:
    answer = client.post(API, json={**body, "init_image": b64_png(), "base64": "yes"}).json()
    assert answer["status"] == "success", answer
    link = answer["output"][0]
    assert link.endswith("-0.base64") and "/generations/" in link
    text = client.get(link.removeprefix("http://testserver"))
    assert text.headers["content-type"].startswith("text/plain")
    assert Image.open(io.BytesIO(base64.b64decode(text.text))).size == (32, 32)
    data_uri = client.post(API, json={**body, "init_image": "data:image/png;base64," + b64_png(), "base64": True})
    assert data_uri.json()["status"] == "success"


def test_inline_base64_setting(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, inline_base64=True) as inline:
        answer = inline.post(API, json={**body, "base64": "yes"}).json()
    assert answer["output"][0].startswith("data:image/png;base64,")
    assert answer["proxy_links"][0].endswith(".base64")


def test_temp_links_expire(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, temp_ttl=60) as temp_client:
        answer = temp_client.post(API, json={**body, "temp": "yes"}).json()
        path = answer["output"][0].removeprefix("http://testserver")
        assert path.startswith("/temp/") and temp_client.get(path).status_code == 200
        file = tmp_path / "temp" / path.removeprefix("/temp/")
        old = time.time() - 120
        os.utime(file, (old, old))
        assert temp_client.get(path).status_code == 404
        assert temp_client.app.state.sdgate.store.sweep_temp() == 1 and not file.exists()


def test_samples_and_explicit_seed(client: TestClient, body: dict) -> None:
    answer = client.post(API, json={**body, "samples": 3, "seed": 2**32 - 1}).json()
    assert len(answer["output"]) == 3 and answer["meta"]["seed"] == 2**32 - 1
    assert [u.split("/")[-1].split("-")[0] for u in answer["output"]] == ["0", "1", "2"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"samples": "5"}, "samples must be between 1 and 4"),
        ({"num_inference_steps": 0}, "num_inference_steps must be between 1 and 50"),
        ({"strength": "1.2"}, "strength must be between 0 and 1"),
        ({"guidance_scale": 0}, "guidance_scale must be between 1 and 20"),
        ({"seed": "abc"}, "seed must be a number"),
        ({"prompt": 7}, "prompt must be a string"),
        ({"scheduler": "Nope"}, "Unknown scheduler: Nope"),
        ({"model_id": "realistic-vision-99"}, "Model not found: realistic-vision-99"),
        ({"init_image": None}, "init_image is required"),
    ],
)
def test_validation_errors_use_the_envelope(client: TestClient, body: dict, change: dict, message: str) -> None:
    response = client.post(API, json={**body, **change})
    assert response.status_code == 200 and set(response.json()) == ERROR_KEYS
    assert is_error(response.json(), message)


@pytest.mark.parametrize(
    "init, base64_flag, message",
    [
        ("missing.png", "no", "Unable to fetch image from provided URL"),
        ("not-an-image.png", "no", "init_image is not a valid image"),
        ("truncated.png", "no", "init_image is not a valid image"),
        ("BASE64", "no", "init image must be a valid url when base64 is a representation of false"),
        ("!!!not base64!!!", "yes", "init_image is not valid base64"),
        ("ftp://example.com/a.png", "no", "init image must be a valid url"),
    ],
)
def test_init_image_failures(
    client: TestClient, body: dict, image_server: ImageServer, init: str, base64_flag: str, message: str
) -> None:
    value = {"BASE64": b64_png()}.get(init, init if "://" in init or "!" in init else image_server.url(init))
    answer = client.post(API, json={**body, "init_image": value, "base64": base64_flag}).json()
    assert is_error(answer, message), answer
    # ...and the server keeps serving.
    assert client.post(API, json=body).json()["status"] == "success"


def test_private_addresses_are_refused_unless_allowed(
    tiny_dir: Path, tmp_path: Path, body: dict, image_server: ImageServer
) -> None:
    with app_client(tiny_dir, tmp_path, allow_private_urls=False) as guarded:
        for url in (image_server.url("init.png"), "http://169.254.169.254/latest", "http://10.0.0.1/a.png",
                    "http://[::1]/a.png", "http://localhost/a.png"):
            answer = guarded.post(API, json={**body, "init_image": url}).json()
            assert is_error(answer, "Unable to fetch image from provided URL: the address is not allowed"), url
        assert guarded.get("/health").json()["worker_alive"] is True


def test_invalid_json_and_unknown_route(client: TestClient) -> None:
    for payload in (b"{not json", b"[1, 2]", b'"text"'):
        answer = client.post(API, content=payload, headers={"content-type": "application/json"}).json()
        assert is_error(answer, "Invalid JSON body"), payload
    missing = client.post("/api/v6/image_editing/outpaint", json={})
    assert missing.status_code == 404 and is_error(missing.json(), "Not found")


def test_api_keys(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, api_keys="k1,k2") as keyed:
        probe = {**body, "model_id": "no-such-model"}  # gets past the key check only with a good key
        assert is_error(keyed.post(API, json={**probe, "key": "wrong"}).json(), "Invalid API key")
        assert is_error(keyed.post(API, json={**probe, "key": None}).json(), "Invalid API key")
        assert is_error(keyed.post(API, json={**probe, "key": "k2"}).json(), "Model not found")
        bearer = keyed.post(API, json={**probe, "key": None}, headers={"Authorization": "Bearer k1"})
        assert is_error(bearer.json(), "Model not found")
        answer = keyed.post(API, json={**probe, "key": "wrong"}).json()
        assert "wrong" not in str(answer) and "k1" not in str(answer)


def test_placeholder_adapter_ids_are_ignored(client: TestClient, body: dict) -> None:
    answer = client.post(API, json={**body, "lora_model": "lora_model_id", "embeddings": "embeddings_model_id"}).json()
    assert answer["status"] == "success"
    assert answer["meta"]["ignored"] == ["lora_model:lora_model_id", "embeddings_model:embeddings_model_id"]


def test_processing_then_fetch_both_forms(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, sync_timeout=0) as async_client:
        answer = async_client.post(API, json=body).json()
        assert answer["status"] == "processing" and answer["message"] == answer["messege"]
        job_id = answer["id"]
        assert answer["fetch_result"] == f"http://testserver/api/v6/images/fetch/{job_id}"
        assert answer["meta"]["id"] == str(job_id) and isinstance(answer["eta"], float)
        assert answer["future_links"] == answer["meta"]["output"] and answer["output"] == []
        deadline = time.monotonic() + 60
        while (done := async_client.post(f"/api/v6/images/fetch/{job_id}", json={"key": "x"}).json())["status"] != "success":
            assert done["status"] == "processing" and time.monotonic() < deadline
            time.sleep(0.1)
        assert done["output"] == answer["future_links"]
        by_body = async_client.post("/api/v6/images/fetch", json={"key": "x", "request_id": str(job_id)}).json()
        assert by_body == done
        assert async_client.post(f"/api/v3/fetch/{job_id}", json={"key": "x"}).json() == done
        assert async_client.get(done["output"][0].removeprefix("http://testserver")).status_code == 200
        assert is_error(async_client.post("/api/v6/images/fetch/999999", json={}).json(), "Request not found: 999999")


def test_queue_full_answers_429(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, sync_timeout=0, max_queue=1) as small:
        slow = {**body, "num_inference_steps": 50, "strength": 1, "samples": 4}
        assert small.post(API, json=slow).json()["status"] == "processing"
        full = small.post(API, json=body)
        assert full.status_code == 429 and full.headers["retry-after"] == "30"
        assert is_error(full.json(), "Rate limit exceeded. Maximum 1 queued requests allowed.")
        assert full.json()["retry_after"] == 30


@pytest.fixture
def broken_models(tiny_dir: Path, tmp_path: Path) -> Path:
    """Real-but-broken models: one registered with no files, one whose VAE cannot decode its UNet's latents."""
    broken = tmp_path / "broken-sd15"
    shutil.copytree(tiny_dir / "tiny-sd15", broken)
    shutil.rmtree(broken / "vae")
    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2,
                  up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=16, norm_num_groups=32
                  ).save_pretrained(broken / "vae")
    config = tmp_path / "models.yaml"
    config.write_text(
        f"include: [{tiny_dir / 'models.yaml'}]\n"
        "models:\n"
        "  not-pulled: {family: sd15, repo: example/never-downloaded}\n"
        f"  broken: {{family: sd15, path: {broken}}}\n"
    )
    return config


def test_model_failures_fail_the_job_only(tiny_dir: Path, tmp_path: Path, body: dict, broken_models: Path,
                                          receiver: WebhookReceiver) -> None:
    with app_client(tiny_dir, tmp_path / "data", config=broken_models) as app:
        missing = app.post(API, json={**body, "model_id": "not-pulled"}).json()
        assert is_error(missing, "Model not-pulled is not available on this server yet; run `sdgate pull not-pulled`")
        crash = app.post(API, json={**body, "model_id": "broken", "webhook": receiver.url})
        assert crash.status_code == 500 and is_error(crash.json(), "Internal server error. Please try again.")
        assert "Traceback" not in crash.text and isinstance(crash.json()["id"], int)
        failed = app.post(f"/api/v6/images/fetch/{crash.json()['id']}", json={}).json()
        assert is_error(failed, "Internal server error")
        assert app.post(API, json=body).json()["status"] == "success"
        receiver.wait_for(1)
        assert receiver.received[0][1].startswith(b'{"status": "failed"')
