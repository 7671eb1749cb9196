"""Real processes: kill -9 and SIGTERM never lose an accepted job; the SDK's fetch loop reaches success.

Both backends: `sdgate serve` and `sdgate serve --backend ray` (a local Ray instance with CPU replicas).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from modelslab_py.core.apis.community import Community
from modelslab_py.core.client import Client
from modelslab_py.schemas.community import Image2Image

from tests.conftest import ImageServer, LiveServer, free_port, start_server

ENV = {"SDGATE_ALLOW_PRIVATE_URLS": "1", "SDGATE_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "SDGATE_SYNC_TIMEOUT": "0",
       "SDGATE_RAY_NUM_GPUS": "0", "SDGATE_RAY_NUM_CPUS": "0"}
BACKENDS = pytest.mark.parametrize("backend", ["embedded", "ray"])


def serve(tiny_dir: Path, data: Path, log_name: str, backend: str) -> LiveServer:
    return start_server(["--config", str(tiny_dir / "models.yaml"), "--data-dir", str(data), "--backend", backend],
                        ENV, free_port(), data / log_name)


def crash(server: LiveServer) -> None:
    """kill -9 the server and every process it started (with Ray: the whole local Ray instance)."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


def submit(server: LiveServer, image_server: ImageServer, count: int, steps: int = 50) -> list[int]:
    body = {"key": "k", "model_id": "tiny-sd15", "prompt": "a cat", "init_image": image_server.url("init.png"),
            "num_inference_steps": steps, "strength": 1, "samples": 2, "seed": 11, "safety_checker": "no"}
    ids = []
    for _ in range(count):
        answer = httpx.post(f"{server.url}/api/v6/images/img2img", json=body, timeout=30).json()
        assert answer["status"] == "processing", answer
        ids.append(answer["id"])
    return ids


def statuses(data: Path) -> dict[int, str]:
    with sqlite3.connect(data / "jobs.db") as db:
        return dict(db.execute("select id, status from jobs"))


def wait_all_success(server: LiveServer, ids: list[int], timeout: float = 240) -> list[dict]:
    deadline = time.monotonic() + timeout
    done: dict[int, dict] = {}
    while len(done) < len(ids):
        assert time.monotonic() < deadline, f"not finished: {set(ids) - set(done)}"
        for job_id in set(ids) - set(done):
            answer = httpx.post(f"{server.url}/api/v6/images/fetch/{job_id}", json={"key": "k"}, timeout=30).json()
            assert answer["status"] in ("processing", "success"), answer
            if answer["status"] == "success":
                done[job_id] = answer
        time.sleep(0.2)
    return [done[i] for i in ids]


@BACKENDS
def test_kill_9_then_restart_finishes_every_accepted_job(tiny_dir: Path, tmp_path: Path, image_server: ImageServer,
                                                         backend: str) -> None:
    server = serve(tiny_dir, tmp_path, "first.log", backend)
    ids = submit(server, image_server, 4)
    crash(server)
    assert set(statuses(tmp_path)) == set(ids)
    assert any(status != "success" for status in statuses(tmp_path).values()), "the kill came too late to test"

    restarted = serve(tiny_dir, tmp_path, "second.log", backend)
    try:
        answers = wait_all_success(restarted, ids)
        for answer in answers:
            for url in answer["output"]:
                assert httpx.get(url, timeout=30).status_code == 200
        # Re-runs overwrite by name: exactly samples x jobs images, none twice.
        assert len(list((tmp_path / "generations").glob("*.png"))) == 2 * len(ids)
        with sqlite3.connect(tmp_path / "jobs.db") as db:  # inputs are dropped once a job is done
            assert db.execute("select count(*) from job_inputs").fetchone() == (0,)

        # The official SDK's fetch loop against a server that answers "processing" first.
        client = Client(api_key="k", fetch_retry=120, fetch_timeout=1)
        client.base_url = f"{restarted.url}/api/"
        api = Community(client)
        first = api.image_to_image(Image2Image(prompt="a cat", model_id="tiny-sd15", init_image=image_server.url("init.png"),
                                               num_inference_steps=20, safety_checker="no"))
        assert first["status"] == "processing"
        fetched = api.fetch(str(first["id"]))
        assert fetched["status"] == "success" and fetched["id"] == first["id"]
    finally:
        crash(restarted)


@BACKENDS
def test_sigterm_finishes_the_running_job_and_keeps_the_rest(tiny_dir: Path, tmp_path: Path,
                                                             image_server: ImageServer, backend: str) -> None:
    server = serve(tiny_dir, tmp_path, "first.log", backend)
    ids = submit(server, image_server, 3, steps=40)
    deadline = time.monotonic() + 60
    while "running" not in statuses(tmp_path).values():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status says "terminated".
    assert server.process.wait(timeout=120) in (0, -signal.SIGTERM)
    farewell = "Application shutdown complete" if backend == "embedded" else "sdgate stopped"
    assert farewell in (tmp_path / "first.log").read_text()
    after = statuses(tmp_path)
    assert after[ids[0]] == "success"  # the running job was allowed to finish
    if backend == "embedded":
        assert set(after.values()) == {"success", "queued"} and after[ids[-1]] == "queued"
    else:  # Serve drains: jobs a replica already holds finish within the grace period; the rest stay queued
        assert set(after.values()) <= {"success", "queued"}
    restarted = serve(tiny_dir, tmp_path, "second.log", backend)
    try:
        wait_all_success(restarted, ids)
    finally:
        crash(restarted)
