"""Several servers on one job table: live servers keep their jobs, a stopped server's jobs are taken over.

On both backends; with Ray the two servers are two ingresses in front of the same GPU deployment.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from server.workers.dispatch import server_id
from tests.conftest import OpenApp, b64_png

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
