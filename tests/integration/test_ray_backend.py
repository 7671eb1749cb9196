"""The Ray backend on a local Ray instance with CPU replicas: model-affinity routing and replica deaths."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray
from fastapi.testclient import TestClient

from tests.conftest import WebhookReceiver, b64_png, ray_app_client

API = "/api/v6/images/img2img"
MODELS = ("tiny-sd15", "tiny-sdxl", "tiny-sd15-single")
BODY = {"key": "k", "prompt": "a cat", "init_image": b64_png(), "base64": "yes", "num_inference_steps": 2,
        "samples": 1, "safety_checker": "no"}

pytestmark = pytest.mark.usefixtures("ray_cluster")


def replicas(client: TestClient) -> list[dict]:
    health = client.get("/health").json()
    assert health["backend"] == "ray" and health["device"] == "ray"
    return health["replicas"]


def test_each_model_stays_on_the_replica_that_loaded_it(tiny_dir: Path, tmp_path: Path) -> None:
    with ray_app_client(tiny_dir, tmp_path, replicas=2, ray_models_per_replica=2) as client:
        for _ in range(4):
            for model_id in MODELS:
                answer = client.post(API, json={**BODY, "model_id": model_id}).json()
                assert answer["status"] == "success", answer
        reports = replicas(client)
    # 12 jobs, 3 models, 2 replicas holding 2 models each: every model was read from disk exactly once,
    # so no job ever landed on a replica that lacked its model.
    assert len(reports) == 2 and sum(r["loads"] for r in reports) == 3, reports
    homes = {model_id: [r["replica"] for r in reports if model_id in r["loaded"]] for model_id in MODELS}
    assert all(len(home) == 1 for home in homes.values()), homes
    assert {len(r["loaded"]) for r in reports} == {1, 2}  # the third model went to the emptier replica


def test_a_job_whose_replica_dies_is_resent_and_reported_once(tiny_dir: Path, tmp_path: Path,
                                                               receiver: WebhookReceiver) -> None:
    with ray_app_client(tiny_dir, tmp_path, replicas=2, sync_timeout=0) as client:
        warm = client.post(API, json={**BODY, "model_id": "tiny-sd15"}).json()
        assert warm["status"] == "processing"
        jobs = client.app.state.sdgate.jobs
        while jobs.get(warm["id"]).status != "success":
            time.sleep(0.05)
        (home,) = [r["replica"] for r in replicas(client) if "tiny-sd15" in r["loaded"]]

        slow = {**BODY, "model_id": "tiny-sd15", "num_inference_steps": 50, "strength": 1, "samples": 4,
                "width": 64, "height": 64, "init_image": b64_png((64, 64)), "webhook": receiver.url}
        job_id = client.post(API, json=slow).json()["id"]
        deadline = time.monotonic() + 60
        while jobs.get(job_id).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        ray.kill(ray.get_actor(home, namespace="serve"), no_restart=True)  # the replica holding the job

        deadline = time.monotonic() + 120
        while (answer := client.post(f"/api/v6/images/fetch/{job_id}", json={"key": "k"}).json())["status"] != "success":
            assert answer["status"] == "processing" and time.monotonic() < deadline, answer
            time.sleep(0.1)
        row = jobs.get(job_id)
        assert row.attempts == 2 and len(answer["output"]) == 4
        receiver.wait_for(1)
        time.sleep(0.5)
        assert len(receiver.received) == 1  # one job, one report
        files = sorted(p.name for p in (tmp_path / "generations").glob("*.png"))
        assert len(files) == 1 + 4  # the warm-up image and this job's four, none written twice
