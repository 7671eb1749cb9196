"""Job rows, webhooks (payload, retries, signature), recovery of unfinished rows, metrics and system_load.

Every test with an app runs twice: on the embedded backend and on the Ray backend (CPU replicas).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import delete

from server.jobs.store import JobStore, jobs, make_engine
from tests.conftest import OpenApp, WebhookReceiver

API = "/api/v6/images/img2img"
SECRET = "webhook-secret"


def wait_for_webhook_status(client: TestClient, job_id: int, wanted: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.post(f"/api/v6/images/fetch/{job_id}", json={}).json()
        if answer.get("webhook_status") == wanted:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)


def test_success_webhook_payload_and_signature(open_app: OpenApp, tmp_path: Path, body: dict, receiver: WebhookReceiver) -> None:
    with open_app(tmp_path, webhook_secret=SECRET) as app:
        answer = app.post(API, json={**body, "webhook": receiver.url, "track_id": "order-17"}).json()
        assert answer["status"] == "success"
        receiver.wait_for(1)
        headers, raw = receiver.received[0]
        payload = json.loads(raw)
        assert payload["status"] == "success" and payload["id"] == answer["id"] and payload["track_id"] == "order-17"
        assert payload["output"] == answer["output"] and payload["meta"]["seed"] == answer["meta"]["seed"]
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-sdgate-signature"], expected)
        assert abs(int(headers["x-sdgate-timestamp"]) - time.time()) < 60
        assert wait_for_webhook_status(app, answer["id"], "delivered")["webhook_status"] == "delivered"


def test_webhook_retries_until_the_receiver_accepts(open_app: OpenApp, tmp_path: Path, body: dict) -> None:
    receiver = WebhookReceiver([500, 500, 200])
    try:
        with open_app(tmp_path, webhook_backoff=0.05) as app:
            job_id = app.post(API, json={**body, "webhook": receiver.url}).json()["id"]
            wait_for_webhook_status(app, job_id, "delivered")
            attempts = app.app.state.sdgate.jobs.attempts_for(job_id)
            assert [a["status_code"] for a in attempts] == [500, 500, 200]
            assert len(receiver.received) == 3
            assert b"sdgate_webhook_attempts_total" in app.get("/metrics").content
    finally:
        receiver.close()


def test_webhook_gives_up_after_max_attempts(open_app: OpenApp, tmp_path: Path, body: dict) -> None:
    receiver = WebhookReceiver([503] * 10)
    try:
        with open_app(tmp_path, webhook_backoff=0.01, webhook_max_attempts=2) as app:
            job_id = app.post(API, json={**body, "webhook": receiver.url}).json()["id"]
            wait_for_webhook_status(app, job_id, "failed")
            assert len(app.app.state.sdgate.jobs.attempts_for(job_id)) == 2
    finally:
        receiver.close()


def test_failed_job_sends_the_failure_body(open_app: OpenApp, tiny_dir: Path, tmp_path: Path, body: dict,
                                           receiver: WebhookReceiver) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(f"include: [{tiny_dir / 'models.yaml'}]\nmodels:\n  gone: {{family: sd15, repo: x/never-pulled}}\n")
    with open_app(tmp_path / "data", config=config) as app:
        answer = app.post(API, json={**body, "model_id": "gone", "webhook": receiver.url, "track_id": 5}).json()
        assert answer["status"] == "error"
        receiver.wait_for(1)
        payload = json.loads(receiver.received[0][1])
        assert payload["status"] == "failed" and payload["id"] == answer["id"] and payload["track_id"] == 5  # echoed as sent
        assert payload["message"] == payload["messege"] and "sdgate pull gone" in payload["message"]


def test_webhook_to_a_private_address_is_refused(open_app: OpenApp, tmp_path: Path, body: dict, image_server) -> None:
    # init_image comes as base64 so that only the webhook address is under test.
    from tests.conftest import b64_png

    with open_app(tmp_path, allow_private_urls=False) as app:
        answer = app.post(API, json={**body, "init_image": b64_png(), "base64": "yes",
                                     "webhook": "http://127.0.0.1:9/hook"}).json()
        assert answer["status"] == "error" and answer["message"] == "webhook must be a public http(s) URL"


def test_system_load_and_metrics(open_app: OpenApp, tmp_path: Path, body: dict) -> None:
    with open_app(tmp_path) as client:
        assert client.post(API, json=body).json()["status"] == "success"
        load = client.post("/api/v3/system_load", json={"key": "k"}).json()
        text = client.get("/metrics").text
    assert load["status"] == "ok" and isinstance(load["queue_num"], int) and isinstance(load["queue_time"], float)
    for name in ("sdgate_jobs_total{status=\"success\"}", "sdgate_queue_depth", "sdgate_queue_wait_seconds_count",
                 "sdgate_generation_seconds_count", "sdgate_model_load_seconds_count"):
        assert name in text, name


def test_job_ids_are_never_reused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    first = JobStore(make_engine(url))
    ids = [first.create("m", {}, None, None) for _ in range(3)]
    with first.engine.begin() as conn:
        conn.execute(delete(jobs))
    again = JobStore(make_engine(url))  # as after a restart
    assert again.create("m", {}, None, None) > max(ids)


def test_recovery_fails_jobs_out_of_attempts_and_fires_their_webhook(open_app: OpenApp, tmp_path: Path,
                                                                      receiver: WebhookReceiver) -> None:
    store = JobStore(make_engine(f"sqlite:///{tmp_path / 'jobs.db'}"))
    params = {"meta": {"track_id": "t", "n_samples": 1}, "file_stem": "x", "base64": False, "temp": False}
    stuck = store.create("tiny-sd15", params, receiver.url, "t")
    for _ in range(3):
        store.mark_running(stuck)  # three runs, each interrupted by a crash
    lost = store.create("tiny-sd15", params, None, None)  # inputs never written
    with open_app(tmp_path, max_attempts=3) as app:
        jobs_after = app.app.state.sdgate.jobs
        assert jobs_after.get(stuck).status == "failed" and "3 attempts" in jobs_after.get(stuck).error
        assert jobs_after.get(lost).status == "failed" and "inputs were lost" in jobs_after.get(lost).error
        receiver.wait_for(1)
        assert json.loads(receiver.received[0][1])["status"] == "failed"
