"""Cross-request batching: compatible jobs share one pipeline call and each still gets its own images."""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.config import load_config
from pipelines.generate import run, run_batch
from pipelines.registry import ModelRegistry
from pipelines.tasks.img2img import Img2ImgSpec
from pipelines.tasks.text2img import Text2ImgSpec
from tests.conftest import b64_png
from tests.integration.test_img2img_api import app_client

API = "/api/v6/images/img2img"
TOLERANCE = 2  # pixel levels; batched kernels may round differently on GPUs (identical on this CPU)


def spec(model_id: str, prompt: str, seed: int, samples: int, colour: tuple[int, int, int]) -> Img2ImgSpec:
    return Img2ImgSpec(model_id, prompt, "blurry", 32, 32, init_image=Image.new("RGB", (32, 32), colour), steps=6,
                          samples=samples, seed=seed)


def test_batched_call_gives_each_job_its_own_images(tiny_dir: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(load_config(tiny_dir / "models.yaml"), tmp_path, max_loaded=2)
    for model_id in ("tiny-sd15", "tiny-sdxl"):
        model = registry.get(model_id)
        jobs = [spec(model_id, "a cat", 5, 2, (200, 40, 40)), spec(model_id, "a dog", 9, 1, (40, 200, 90))]
        alone = [run(model, job).images for job in jobs]
        together = [result.images for result in run_batch(model, jobs)]
        assert [len(images) for images in together] == [2, 1]
        for solo_images, batch_images in zip(alone, together):
            for a, b in zip(solo_images, batch_images):
                assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= TOLERANCE


def test_batch_keys_separate_incompatible_jobs() -> None:
    base = spec("tiny-sd15", "a", 1, 1, (0, 0, 0))
    assert base.batch_key() == spec("tiny-sd15", "other prompt", 7, 3, (9, 9, 9)).batch_key()
    for change in ({"steps": 7}, {"strength": 0.5}, {"model_id": "tiny-sdxl"}, {"width": 40}, {"scheduler": "DDIMScheduler"}):
        assert replace(base, **change).batch_key() != base.batch_key(), change


def _post_all(app: TestClient, api: str, bodies: list[dict]) -> list[dict]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: app.post(api, json=body).json(), bodies))


def _images(app: TestClient, answer: dict) -> list[np.ndarray]:
    texts = [app.get(url.removeprefix("http://testserver")).text for url in answer["output"]]  # .base64 files
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(text)))).astype(int) for text in texts]


def _bodies(count: int) -> list[dict]:
    return [{"key": "k", "model_id": "tiny-sd15", "prompt": f"job {i}", "init_image": b64_png(), "base64": "yes",
             "num_inference_steps": 8, "seed": 100 + i, "samples": 1 + i % 2, "safety_checker": "no"}
            for i in range(count)]


def _check_batched_like_unbatched(tiny_dir: Path, tmp_path: Path, api: str, bodies: list[dict], slow: dict) -> None:
    with app_client(tiny_dir, tmp_path / "off", batching=False) as plain:
        expected = [_images(plain, answer) for answer in _post_all(plain, api, bodies)]
    with app_client(tiny_dir, tmp_path / "on", batch_window=0.5) as batched:
        # A slow job first keeps the worker busy while the others queue up behind it.
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(lambda: batched.post(api, json=slow).json())
            time.sleep(0.3)
            answers = _post_all(batched, api, bodies)
            assert first.result()["status"] == "success"
        jobs = batched.app.state.sdgate.jobs
        sizes = [jobs.get(answer["id"]).result["timings"]["batch_jobs"] for answer in answers]
        assert max(sizes) > 1, sizes
        for answer, reference in zip(answers, expected):
            for got, want in zip(_images(batched, answer), reference, strict=True):
                assert np.abs(got - want).max() <= TOLERANCE


def test_concurrent_requests_are_batched_and_match_unbatched(tiny_dir: Path, tmp_path: Path) -> None:
    bodies = _bodies(5)
    slow = {**bodies[0], "num_inference_steps": 50, "strength": 1, "seed": 1}
    _check_batched_like_unbatched(tiny_dir, tmp_path, API, bodies, slow)


def test_concurrent_text2img_requests_are_batched_and_match_unbatched(tiny_dir: Path, tmp_path: Path) -> None:
    bodies = [{"key": "k", "model_id": "tiny-sd15", "prompt": f"job {i}", "width": 64, "height": 64, "base64": "yes",
               "num_inference_steps": 6, "seed": 200 + i, "samples": 1 + i % 2, "safety_checker": "no"}
              for i in range(4)]
    slow = {**bodies[0], "num_inference_steps": 50, "seed": 1}
    _check_batched_like_unbatched(tiny_dir, tmp_path, "/api/v6/images/text2img", bodies, slow)


def test_text2img_and_img2img_jobs_never_share_a_call() -> None:
    image_job = spec("tiny-sd15", "a", 1, 1, (0, 0, 0))
    text_job = Text2ImgSpec("tiny-sd15", "a", "blurry", 32, 32, steps=6, seed=1)
    assert text_job.batch_key() != image_job.batch_key()
    assert text_job.batch_key() == replace(text_job, prompt="b", seed=9, samples=2).batch_key()


def test_a_lone_request_does_not_wait_for_the_window(tiny_dir: Path, tmp_path: Path) -> None:
    with app_client(tiny_dir, tmp_path, batch_window=30) as app:
        started = time.monotonic()
        answer = app.post(API, json=_bodies(1)[0]).json()
        # generationTime starts after batching; the request's wall time shows any wait for the 30 s window.
        assert answer["status"] == "success" and time.monotonic() - started < 20
        assert app.app.state.sdgate.jobs.get(answer["id"]).result["timings"]["batch_jobs"] == 1
