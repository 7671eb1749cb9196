"""The realtime endpoints (/api/v6/realtime/*) and /api/v6/image_editing/inpaint: the realtime model and its
defaults, ignored fields, the hosted realtime meta, processing + fetch, errors, and priority over queued jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.conftest import ImageServer, b64_png
from tests.integration.test_img2img_api import app_client, is_error
from tests.integration.test_inpaint_api import b64, gradient, half_mask, pixels

REALTIME = "/api/v6/realtime"
PATHS = [f"{REALTIME}/text2img", f"{REALTIME}/img2img", f"{REALTIME}/inpaint"]
EDITING = "/api/v6/image_editing/inpaint"


def body(path: str, **changes: object) -> dict:
    """What each realtime path needs: no model_id; images inline for img2img and inpaint."""
    values: dict = {"key": "k", "prompt": "a red fox", "width": 64, "height": 64, "seed": 99, "base64": "yes"}
    if not path.endswith("text2img"):
        values["init_image"] = b64(gradient())
    if path.endswith("inpaint"):
        values["mask_image"] = b64(half_mask())
    return {**values, **changes}


def wait_for(client: TestClient, path: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (answer := client.post(path, json={"key": "k"}).json())["status"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return answer


@pytest.mark.parametrize("path", PATHS)
def test_runs_the_realtime_model_with_its_defaults(client: TestClient, path: str) -> None:
    answer = client.post(path, json=body(path)).json()
    assert answer["status"] == "success", answer
    meta = answer["meta"]
    assert meta["model_id"] == "tiny-realtime" and meta["steps"] == 2 and meta["guidance_scale"] == 1.0
    assert meta["scheduler_used"] == "EulerAncestralDiscreteScheduler" and meta["ignored"] == []
    assert meta["safety_checker"] == "no" and meta["safety_checker_type"] == "black"
    assert meta["enhance_prompt"] == "no" and meta["prompt"] == "a red fox" and meta["negative_prompt"] == ""
    pixels(client, answer)


@pytest.mark.parametrize("path", PATHS)
def test_steps_and_guidance_from_the_body_win(client: TestClient, path: str) -> None:
    meta = client.post(path, json=body(path, steps="3", guidance_scale="2")).json()["meta"]
    assert meta["steps"] == 3 and meta["guidance_scale"] == 2.0
    assert client.post(path, json=body(path, num_inference_steps=4)).json()["meta"]["steps"] == 4


@pytest.mark.parametrize("path", PATHS)
def test_model_scheduler_and_lora_are_listed_and_have_no_effect(client: TestClient, path: str) -> None:
    plain = client.post(path, json=body(path)).json()
    extras = {"model_id": "tiny-sdxl", "scheduler": "DDIMScheduler", "lora_model": "tiny-lora-a"}
    ignored = client.post(path, json=body(path, **extras)).json()
    meta = ignored["meta"]
    assert set(meta["ignored"]) == {"model_id:tiny-sdxl", "scheduler:DDIMScheduler", "lora_model:tiny-lora-a"}
    assert meta["model_id"] == "tiny-realtime" and meta["scheduler_used"] == "EulerAncestralDiscreteScheduler"
    assert np.array_equal(pixels(client, ignored), pixels(client, plain))


def test_negative_prompt_is_echoed_without_the_default(client: TestClient) -> None:
    path = f"{REALTIME}/text2img"
    assert client.post(path, json=body(path, negative_prompt="bad quality")).json()["meta"]["negative_prompt"] == \
        "bad quality"


def test_meta_has_lowercase_width_and_height(client: TestClient, image_server: ImageServer) -> None:
    meta = client.post(f"{REALTIME}/text2img", json=body("text2img", width=72, height=64)).json()["meta"]
    assert (meta["width"], meta["height"]) == (meta["W"], meta["H"]) == (72, 64)
    for path in PATHS[1:]:  # these follow init_image (40x36 -> 40x32); the body's width/height are ignored
        answer = client.post(path, json=body(path, init_image=image_server.url("init-40x36.png"), base64="no",
                                             mask_image=image_server.url("init-40x36.png"))).json()
        meta = answer["meta"]
        assert (meta["width"], meta["height"]) == (meta["W"], meta["H"]) == (40, 32), answer


@pytest.mark.parametrize("path", PATHS)
def test_instant_response_then_realtime_fetch(client: TestClient, path: str) -> None:
    answer = client.post(path, json=body(path, instant_response="yes")).json()
    assert answer["status"] == "processing" and "tip_1" not in answer, answer
    assert answer["fetch_result"].endswith(f"/api/v6/realtime/fetch/{answer['id']}")
    done = wait_for(client, f"/api/v6/realtime/fetch/{answer['id']}")
    assert done["status"] == "success" and done["output"] == answer["future_links"], done


@pytest.mark.parametrize(
    "path, field, message",
    [*[(path, "prompt", "The prompt field is required.") for path in [*PATHS, EDITING]],
     (f"{REALTIME}/img2img", "init_image", "The init image field is required."),
     (f"{REALTIME}/inpaint", "init_image", "The init image field is required."),
     (EDITING, "init_image", "The init image field is required."),
     (f"{REALTIME}/inpaint", "mask_image", "The mask image field is required."),
     (EDITING, "mask_image", "The mask image field is required.")],
)
def test_required_fields(client: TestClient, path: str, field: str, message: str) -> None:
    sent = body(path)
    assert is_error(client.post(path, json={k: v for k, v in sent.items() if k != field}).json(), message)
    assert is_error(client.post(path, json={**sent, field: ""}).json(), message)


def test_no_realtime_and_no_default_model(tiny_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    only = {"family": "sd15", "path": str(tiny_dir / "tiny-sd15"), "default": False, "realtime": False}
    config.write_text(yaml.safe_dump({"models": {"only": only}}))
    with app_client(tiny_dir, tmp_path / "data", config=config) as bare:
        for path in [*PATHS, EDITING]:
            assert is_error(bare.post(path, json=body(path)).json(), "Model not found: realtime"), path


@pytest.fixture(scope="module")
def fallback_client(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """No realtime model: the default one runs, with RealtimeDefaults' own values and no scheduler of its own."""
    folder = tmp_path_factory.mktemp("fallback")
    only = {"family": "sd15", "path": str(tiny_dir / "tiny-sd15"), "default": True}
    (folder / "models.yaml").write_text(yaml.safe_dump({"models": {"only": only}}))
    with app_client(tiny_dir, folder / "data", config=folder / "models.yaml") as fallback:
        yield fallback


def test_without_a_realtime_model_the_default_one_runs(fallback_client: TestClient) -> None:
    path = f"{REALTIME}/text2img"
    meta = fallback_client.post(path, json=body(path)).json()["meta"]
    assert meta["model_id"] == "only" and meta["steps"] == 4 and meta["guidance_scale"] == 1.0


def test_an_ignored_scheduler_has_no_effect_without_a_realtime_scheduler(fallback_client: TestClient) -> None:
    path = f"{REALTIME}/text2img"
    plain = fallback_client.post(path, json=body(path)).json()
    ignored = fallback_client.post(path, json=body(path, scheduler="DDIMScheduler")).json()
    assert ignored["meta"]["ignored"] == ["scheduler:DDIMScheduler"]
    assert ignored["meta"]["scheduler_used"] == plain["meta"]["scheduler_used"]
    assert np.array_equal(pixels(fallback_client, ignored), pixels(fallback_client, plain))


def test_image_editing_inpaint_defaults_range_and_fetch(client: TestClient) -> None:
    assert is_error(client.post(EDITING, json=body(EDITING, guidance_scale=6)).json(),
                    "guidance_scale must be between 1 and 5")
    answer = client.post(EDITING, json=body(EDITING, instant_response="true")).json()
    assert answer["status"] == "processing", answer
    assert answer["meta"]["steps"] == 30 and answer["meta"]["guidance_scale"] == 5.0
    assert answer["meta"]["model_id"] == "tiny-realtime"
    assert answer["fetch_result"].endswith(f"/api/v6/image_editing/fetch/{answer['id']}")
    done = wait_for(client, f"/api/v6/image_editing/fetch/{answer['id']}")
    assert done["status"] == "success" and done["meta"]["inpaint_mode"] == "blend", done
    assert (done["meta"]["width"], done["meta"]["height"]) == (32, 32)


def test_realtime_jobs_run_before_queued_ordinary_jobs(tiny_dir: Path, tmp_path: Path) -> None:
    slow = {"key": "k", "model_id": "tiny-sd15", "prompt": "slow", "init_image": b64_png(), "base64": "yes",
            "num_inference_steps": 50, "strength": 1, "samples": 2, "seed": 1, "safety_checker": "no"}
    ordinary = {"key": "k", "model_id": "tiny-sd15", "prompt": "ordinary", "width": 64, "height": 64,
                "num_inference_steps": 2, "seed": 2, "safety_checker": "no"}
    with app_client(tiny_dir, tmp_path, sync_timeout=0, batching=False) as app:
        first = app.post("/api/v6/images/img2img", json=slow).json()["id"]
        queued = [app.post("/api/v6/images/text2img", json=ordinary).json()["id"] for _ in range(3)]
        fast = app.post(f"{REALTIME}/text2img", json=body("text2img")).json()["id"]
        jobs = app.app.state.sdgate.jobs
        deadline = time.monotonic() + 60
        while any(jobs.get(job).status != "success" for job in (first, *queued, fast)):
            assert time.monotonic() < deadline, [jobs.get(job).status for job in (first, *queued, fast)]
            time.sleep(0.1)
        started = jobs.get(fast).started_at
        assert jobs.get(first).started_at < started  # the running job is not interrupted
        assert all(started < jobs.get(job).started_at for job in queued)
