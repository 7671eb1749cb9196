"""Several servers on one job table: live servers keep their jobs, a stopped server's jobs are taken over.

On both backends; with Ray the two servers are two ingresses in front of the same GPU deployment.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from server.workers.dispatch import server_id
from tests.conftest import OpenApp, b64_png, png_bytes
from tests.integration.test_img2img_api import app_client

API = "/api/v6/images/img2img"
SLOW = {"key": "k", "model_id": "tiny-sd15", "prompt": "x", "init_image": b64_png(), "base64": "yes",
        "num_inference_steps": 40, "strength": 1, "samples": 2, "safety_checker": "no"}


def wait_success(client: TestClient, ids: list[int], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for job_id in ids:
        while client.post(f"/api/v6/images/fetch/{job_id}", json={}).json()["status"] != "success":
            assert time.monotonic() < deadline, job_id
            time.sleep(0.1)


def test_a_live_server_keeps_its_jobs(open_app: OpenApp, tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = {"database_url": shared, "sync_timeout": 0, "lease_seconds": 0.6}
    with open_app(tmp_path / "a", **settings) as a:
        ids = [a.post(API, json={**SLOW, "seed": i}).json()["id"] for i in range(3)]
        with open_app(tmp_path / "b", **settings) as b:
            wait_success(a, ids)
            jobs = b.app.state.sdgate.jobs
            assert {jobs.get(job_id).owner for job_id in ids} == {server_id(tmp_path / "a")}
            assert jobs.get(ids[0]).attempts == 1 and jobs.get(ids[-1]).attempts == 1  # nobody ran them twice


def test_a_stopped_servers_jobs_are_taken_over(open_app: OpenApp, tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = {"database_url": shared, "sync_timeout": 0, "lease_seconds": 0.6}
    with open_app(tmp_path / "a", shutdown_grace=0, **settings) as a:
        ids = [a.post(API, json={**SLOW, "seed": i}).json()["id"] for i in range(3)]
    # Server a is gone with work queued; server b (its own data dir, its own id) finishes it.
    with open_app(tmp_path / "b", **settings) as b:
        wait_success(b, ids)
        jobs = b.app.state.sdgate.jobs
        owners = {jobs.get(job_id).owner for job_id in ids}
        assert server_id(tmp_path / "b") in owners
        assert all(jobs.get(job_id).status == "success" for job_id in ids)
        names = [item["image"] for job_id in ids for item in jobs.get(job_id).result["outputs"]]
        assert len(names) == len(set(names)) == 6



def test_a_queued_inpaint_job_survives_its_server(tiny_dir: Path, tmp_path: Path) -> None:
    """The mask is stored with the job: after its server stops, the next one runs the inpaint job as asked."""
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 16, 32))  # repaint the left half, keep the right half
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    inpaint = {"key": "k", "model_id": "tiny-sd15", "prompt": "x", "init_image": b64_png(), "base64": "yes",
               "mask_image": base64.b64encode(buffer.getvalue()).decode(), "steps": 4, "safety_checker": "no"}
    shared = {"database_url": f"sqlite:///{tmp_path / 'shared.db'}", "sync_timeout": 0, "lease_seconds": 0.6}
    with app_client(tiny_dir, tmp_path / "a", shutdown_grace=0, **shared) as a:
        a.post(API, json=SLOW)  # keeps the worker busy, so the inpaint job is still queued when a stops
        job_id = a.post("/api/v6/images/inpaint", json=inpaint).json()["id"]
    with app_client(tiny_dir, tmp_path / "b", **shared) as b:
        wait_success(b, [job_id])
        answer = b.post(f"/api/v6/images/fetch/{job_id}", json={}).json()
        assert b.app.state.sdgate.jobs.get(job_id).owner == server_id(tmp_path / "b")  # b ran it, from the row
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(
            b.get(answer["output"][0].removeprefix("http://testserver")).text))))
    init = np.asarray(Image.open(io.BytesIO(png_bytes())).convert("RGB"))
    assert answer["meta"]["inpaint_mode"] == "blend"
    assert np.array_equal(image[:, 16:], init[:, 16:]) and not np.array_equal(image[:, :16], init[:, :16])
