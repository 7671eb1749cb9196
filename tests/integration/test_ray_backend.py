"""The Ray backend on a local Ray instance with CPU replicas: affinity, replica deaths, autoscaling, Postgres + S3."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import httpx
import pytest
import ray
from fastapi.testclient import TestClient
from PIL import Image

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
    with ray_app_client(tiny_dir, tmp_path, replicas=2, ray_models_per_replica=2, preload="tiny-sdxl") as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/ready")).status_code != 200:  # SDGATE_PRELOAD warms a replica
            assert time.monotonic() < deadline, ready.json()
            time.sleep(0.1)
        assert ready.json()["loaded_models"] == ["tiny-sdxl"]
        reload = client.post("/api/v6/images/model_reload", json={"key": "k", "model_id": "tiny-sd15"}).json()
        assert reload["status"] == "success", reload
        for _ in range(4):
            for model_id in MODELS:
                answer = client.post(API, json={**BODY, "model_id": model_id}).json()
                assert answer["status"] == "success", answer
        reports = replicas(client)
    # A preload, a reload and 12 jobs over 3 models on 2 replicas holding 2 models each: every model was
    # read from disk exactly once, so no job ever landed on a replica that lacked its model.
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


def running_replicas() -> int:
    from ray import serve

    deployment = serve.status().applications["sdgate"].deployments["GpuReplica"]
    return deployment.replica_states.get("RUNNING", 0)


def test_a_backlog_adds_replicas_up_to_the_ceiling(tiny_dir: Path, tmp_path: Path) -> None:
    autoscaling = {"ray_max_replicas": 2, "ray_target_ongoing_requests": 1, "ray_upscale_delay": 0,
                   "ray_autoscale_window": 1, "ray_max_ongoing_requests": 2, "sync_timeout": 0, "batching": False}
    with ray_app_client(tiny_dir, tmp_path, replicas=1, **autoscaling) as client:
        assert running_replicas() == 1
        slow = {**BODY, "model_id": "tiny-sd15", "num_inference_steps": 50, "strength": 1, "samples": 4}
        ids = [client.post(API, json={**slow, "seed": seed}).json()["id"] for seed in range(10)]
        deadline = time.monotonic() + 90
        while running_replicas() < 2:
            assert time.monotonic() < deadline, "no replica was added for a backlog of 10 jobs"
            time.sleep(0.2)
        jobs = client.app.state.sdgate.jobs
        while any(jobs.get(job_id).status != "success" for job_id in ids):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert len(replicas(client)) == 2  # the new replica ran some of the backlog


def test_replicas_share_a_postgres_job_table_and_an_s3_bucket(tiny_dir: Path, tmp_path: Path, postgres_url: str,
                                                              s3_endpoint: str, bucket: str) -> None:
    cluster = {"database_url": postgres_url, "storage": "s3", "s3_bucket": bucket, "s3_endpoint_url": s3_endpoint}
    with ray_app_client(tiny_dir, tmp_path, replicas=2, **cluster) as client:
        answers = [client.post(API, json={**BODY, "model_id": m}).json() for m in MODELS[:2]]
        jobs = client.app.state.sdgate.jobs
        assert jobs.engine.dialect.name == "postgresql"
        assert len(replicas(client)) == 2  # the two models went to different replicas
    for answer in answers:
        assert answer["status"] == "success", answer
        assert answer["output"][0].startswith(f"{s3_endpoint}/{bucket}/generations/")
        png = base64.b64decode(httpx.get(answer["output"][0]).text)  # base64: yes, as the hosted API stores it
        assert Image.open(io.BytesIO(png)).size == (32, 32)
    assert not list((tmp_path / "generations").glob("*"))  # nothing went to local disk
