"""Hostile input at the HTTP surface: size caps, malformed bodies, file-serving traversal, key storms, leaks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import b64_png, png_bytes
from tests.integration.test_img2img_api import app_client

API = "/api/v6/images/img2img"
FETCH = "/api/v6/images/fetch"
VALID = {"key": "k", "model_id": "tiny-sd15", "prompt": "x", "init_image": b64_png(), "base64": "yes",
         "num_inference_steps": 2, "safety_checker": "no"}

# (body, expected message prefix). Each must answer HTTP 200 with the error envelope, never a 5xx.
MALFORMED: list[tuple[object, str]] = [
    ({}, "init_image is required"),
    ({"init_image": None}, "init_image is required"),
    ({"init_image": ""}, "init_image is required"),
    ({"init_image": 12}, "init_image must be a string"),
    ({"init_image": ["http://a/b.png"]}, "init_image must be a string"),
    ({"init_image": {"url": "x"}}, "init_image must be a string"),
    ({"init_image": "not-a-url"}, "init image must be a valid url when base64"),
    ({"init_image": "data:image/png;base64,AAAA", "base64": "no"}, "init image must be a valid url when base64"),
    ({**VALID, "init_image": "%%%"}, "init_image is not valid base64"),
    ({**VALID, "init_image": "aGVsbG8="}, "init_image is not a valid image"),
    ({**VALID, "samples": "NaN"}, "samples must be a number"),
    ({**VALID, "samples": "Infinity"}, "samples must be a number"),
    ({**VALID, "samples": 1e308}, "samples must be between 1 and 4"),
    ({**VALID, "samples": -1}, "samples must be between 1 and 4"),
    ({**VALID, "samples": 2.5}, "samples must be an integer"),
    ({**VALID, "samples": True}, "samples must be a number"),
    ({**VALID, "samples": [1]}, "samples must be a number"),
    ({**VALID, "samples": {"n": 1}}, "samples must be a number"),
    ({**VALID, "samples": ""}, "samples must be a number"),
    ({**VALID, "num_inference_steps": 10**30}, "num_inference_steps must be between 1 and 50"),
    ({**VALID, "num_inference_steps": "٣"}, "num_inference_steps must be a number"),
    ({**VALID, "strength": "-0"}, "strength x num_inference_steps gives no denoising step"),
    ({**VALID, "strength": "0.1", "num_inference_steps": 5}, "strength x num_inference_steps gives no denoising step"),
    ({**VALID, "strength": "0x1"}, "strength must be a number"),
    ({**VALID, "guidance_scale": "1e3"}, "guidance_scale must be between 1 and 20"),
    ({**VALID, "guidance_scale": None, "strength": "abc"}, "strength must be a number"),
    ({**VALID, "seed": 1.5}, "seed must be an integer"),
    ({**VALID, "seed": -5}, "seed must be between 0 and 4294967295"),
    ({**VALID, "seed": "99999999999999999999"}, "seed must be between 0 and 4294967295"),
    ({**VALID, "clip_skip": 0}, "clip_skip must be between 1 and 8"),
    ({**VALID, "prompt": ["a", "b"]}, "prompt must be a string"),
    ({**VALID, "prompt": 3.14}, "prompt must be a string"),
    ({**VALID, "negative_prompt": {"x": 1}}, "negative_prompt must be a string"),
    ({**VALID, "model_id": 7}, "model_id must be a string"),
    ({**VALID, "model_id": "../../etc/passwd"}, "Model not found: ../../etc/passwd"),
    ({**VALID, "model_id": "모델"}, "Model not found: 모델"),
    ({**VALID, "scheduler": "'; DROP TABLE jobs; --"}, "Unknown scheduler"),
    ({**VALID, "scheduler": 3}, "scheduler must be one of"),
    ({**VALID, "base64": "perhaps"}, 'base64 must be "yes" or "no"'),
    ({**VALID, "base64": 2}, 'base64 must be "yes" or "no"'),
    ({**VALID, "tomesd": []}, 'tomesd must be "yes" or "no"'),
    ({**VALID, "safety_checker_type": "confetti"}, "safety_checker_type must be one of"),
    ({**VALID, "algorithm_type": "dpmsolver"}, "algorithm_type must be one of"),
    ({**VALID, "enhance_style": "🙂"}, "Unknown enhance_style: 🙂"),
    ({**VALID, "lora_strength": "0.5,,1"}, "lora_strength must be a number"),
    ({**VALID, "lora_strength": "5"}, "lora_strength must be between 0.1 and 1"),
    ({**VALID, "ip_adapter_id": "ip-adapter_sd15; rm -rf /"}, "ip_adapter_id must be one of"),
    ({**VALID, "ip_adapter_scale": "2"}, "ip_adapter_scale must be between 0 and 1"),
    ({**VALID, "track_id": {"a": 1}}, "track_id must be a string or a number"),
    ({**VALID, "webhook": "file:///etc/passwd"}, "webhook must be a public http(s) URL"),
    ({**VALID, "webhook": 5}, "webhook must be a string"),
    ([VALID], "Invalid JSON body"),
    ("just a string", "Invalid JSON body"),
    (None, "Invalid JSON body"),
    (42, "Invalid JSON body"),
]


@pytest.mark.parametrize("payload, message", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_malformed_bodies_get_the_envelope(client: TestClient, payload: object, message: str) -> None:
    response = client.post(API, json=payload)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "error" and answer["message"] == answer["messege"]
    assert answer["message"].startswith(message), answer["message"]


def test_raw_garbage_bodies(client: TestClient) -> None:
    for raw in (b"", b"\x00\xff\xfe", b"{" * 10000, b'{"a": 1e999999}', "{\"prompt\": \"\ud800\"}".encode("utf-8", "surrogatepass")):
        response = client.post(API, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 200 and response.json()["status"] == "error"
    assert client.get("/health").status_code == 200


def test_body_prompt_and_pixel_caps(tiny_dir: Path, tmp_path: Path) -> None:
    with app_client(tiny_dir, tmp_path, max_body_bytes=20_000, max_prompt_chars=50, max_request_pixels=32 * 32 * 2,
                    max_download_bytes=5_000) as app:
        too_big = app.post(API, content=b'{"init_image": "' + b"A" * 30_000 + b'"}',
                           headers={"content-type": "application/json"})
        assert too_big.status_code == 413 and too_big.json()["message"] == "Request body is larger than 20000 bytes"
        assert app.post(API, json={**VALID, "prompt": "x" * 51}).json()["message"] == "prompt is longer than 50 characters"
        assert app.post(API, json={**VALID, "negative_prompt": "y" * 51}).json()["message"].startswith("negative_prompt is longer")
        budget = app.post(API, json={**VALID, "samples": 3}).json()
        assert budget["message"].startswith("samples x output size (3 x 32x32) exceeds")
        big_base64 = app.post(API, json={**VALID, "init_image": "A" * 8_000}).json()
        assert big_base64["message"] == "init_image is larger than 5000 bytes"
        assert app.post(API, json={**VALID, "samples": 2}).json()["status"] == "success"


def test_decompression_bombs_are_refused(tiny_dir: Path, tmp_path: Path) -> None:
    import base64

    with app_client(tiny_dir, tmp_path, max_image_pixels=64 * 64) as app:
        bomb = base64.b64encode(png_bytes((200, 200))).decode()
        answer = app.post(API, json={**VALID, "init_image": bomb}).json()
        assert answer["message"] == "init_image is too large"


@pytest.mark.parametrize("path", [
    "/generations/../jobs.db", "/generations/..%2fjobs.db", "/generations/%2e%2e%2fjobs.db", "/generations/%252e%252e%252fjobs.db",
    "/generations/", "/generations", "/temp/", "/generations/jobs.db", "/generations/.%2e/jobs.db",
    "/generations/0-not-a-uuid.png", "/generations/..\\jobs.db", "/inputs/x.png", "/temp/../generations/x.png",
])
def test_file_serving_only_serves_our_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"SQLite" not in response.content


def test_a_failed_key_storm_is_throttled_per_address(tiny_dir: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    secret = "correct-horse-battery"
    with caplog.at_level(logging.DEBUG), app_client(tiny_dir, tmp_path, api_keys=secret, key_failures_per_minute=5) as app:
        for attempt in range(5):
            answer = app.post(API, json={**VALID, "key": f"guess-{attempt}"}).json()
            assert answer["message"] == "Invalid API key"
        blocked = app.post(API, json={**VALID, "key": secret})
        assert blocked.status_code == 429 and blocked.json()["retry_after"] > 0
        assert blocked.headers["retry-after"]
        ok = app.post(FETCH, json={"key": secret, "request_id": 1}, headers={"x-forwarded-for": "1.2.3.4"})
        assert ok.status_code == 429  # the throttle keys on the connection address, not on a header
    assert secret not in caplog.text and "guess-" not in caplog.text


def test_jobs_are_fetchable_only_with_an_accepted_key(tiny_dir: Path, tmp_path: Path) -> None:
    with app_client(tiny_dir, tmp_path, api_keys="good") as app:
        job_id = app.post(API, json={**VALID, "key": "good"}).json()["id"]
        assert app.post(f"{FETCH}/{job_id}", json={"key": "bad"}).json()["message"] == "Invalid API key"
        assert app.post(FETCH, json={"request_id": job_id}).json()["message"].startswith("Invalid API key")
        assert app.post(f"{FETCH}/{job_id}", json={"key": "good"}).json()["status"] == "success"


def test_a_streamed_body_past_the_cap_answers_413(tiny_dir: Path, tmp_path: Path) -> None:
    """No Content-Length (chunked): the cap is enforced while the body is read, and the answer is still 413."""
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 1000

    with app_client(tiny_dir, tmp_path, max_body_bytes=20000) as app:
        for path in ("/api/v6/images/text2img", API, "/api/v6/images/fetch/1"):
            answer = app.post(path, content=chunks())
            assert answer.status_code == 413, (path, answer.text)
            assert answer.json()["message"] == "Request body is larger than 20000 bytes"
        assert app.get("/health").status_code == 200
