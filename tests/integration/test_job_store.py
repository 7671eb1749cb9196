"""The job table on SQLite and on PostgreSQL, through the same SQLAlchemy Core code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from server.jobs.store import JobStore, jobs, make_engine
from tests.integration.test_img2img_api import app_client


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    yield request.getfixturevalue("postgres_url")


def test_job_lifecycle_and_webhook_outbox(database_url: str) -> None:
    store = JobStore(make_engine(database_url))
    params = {"meta": {"seed": 1, "prompt": "ünïcode ✓"}, "nested": [1, {"a": None}]}
    first = store.create("tiny-sd15", params, "https://hooks.example/in", "t-1")
    second = store.create("tiny-sd15", params, None, None)
    assert second > first and [row.id for row in store.unfinished()] == [first, second]
    assert store.get(first).params == params and store.get(first).status == "queued"
    waited = store.mark_running(first)
    assert waited >= 0 and store.get(first).attempts == 1 and store.get(first).status == "running"
    assert store.webhook_status(first) == "pending" and store.webhook_status(second) == ""
    store.finish(first, {"outputs": [], "generation_time": 0.5})
    store.fail(second, "boom")
    assert store.get(first).status == "success" and store.get(second).error == "boom"
    (delivery,) = store.due_deliveries(time.time())
    assert delivery.job_id == first and store.due_deliveries(time.time() - 60) == []
    store.record_attempt(delivery, 503, "HTTP 503", time.time() + 30, final=False)
    assert store.due_deliveries(time.time()) == [] and store.webhook_status(first) == "pending"
    (again,) = store.due_deliveries(time.time() + 31)
    store.record_attempt(again, 200, None, None, final=False)
    assert store.webhook_status(first) == "delivered"
    assert [a["status_code"] for a in store.attempts_for(first)] == [503, 200]
    # An ended job is reported once: a late second ending or a re-send changes nothing.
    assert not store.finish(second, {"outputs": []}) and not store.requeue(second)
    assert store.get(second).status == "failed" and store.get(second).result is None
    assert len(store.due_deliveries(time.time() + 3600)) == 0 and store.count_unfinished() == 0
    third = store.create("tiny-sd15", params, "https://hooks.example/3", None)
    store.mark_running(third)
    assert store.requeue(third) and store.get(third).status == "queued" and store.count_unfinished() == 1
    assert store.fail(third, "once") and not store.fail(third, "twice") and store.get(third).error == "once"
    assert [d.job_id for d in store.due_deliveries(time.time())] == [third]


def test_ids_are_not_reused_after_deletes(database_url: str) -> None:
    store = JobStore(make_engine(database_url))
    ids = [store.create("m", {}, None, None) for _ in range(3)]
    with store.engine.begin() as conn:
        conn.execute(delete(jobs))
    assert JobStore(make_engine(database_url)).create("m", {}, None, None) > max(ids)


def test_the_server_runs_on_the_database(database_url: str, tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path / "data", database_url=database_url, sync_timeout=0) as app:
        job_id = app.post("/api/v6/images/img2img", json=body).json()["id"]
        deadline = time.monotonic() + 60
        while (answer := app.post(f"/api/v6/images/fetch/{job_id}", json={}).json())["status"] != "success":
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
        assert answer["id"] == job_id and answer["output"]


def test_claims_take_lapsed_leases_once(database_url: str) -> None:
    store = JobStore(make_engine(database_url))
    mine = store.create("m", {}, None, None, owner="a", lease_seconds=0)
    live = store.create("m", {}, None, None, owner="b", lease_seconds=60)
    assert store.claim("a", 30, include_own=False, held={mine}) == []  # a still holds its job
    assert store.renew_leases("b", 60, set()) == 0  # b holds nothing in memory: nothing renewed
    assert [row.id for row in store.claim("c", 30, include_own=False)] == [mine]  # lapsed: c takes it
    assert store.claim("d", 30, include_own=False) == []  # c's fresh lease; b's live one
    assert [row.id for row in store.claim("b", 30, include_own=True)] == [live]  # b restarting takes its own
    assert store.get(mine).owner == "c" and store.get(live).owner == "b"
    assert store.mark_running(mine, "a") is None and store.mark_running(mine, "c") is not None


def test_a_job_its_server_lost_track_of_is_claimed_again(database_url: str) -> None:
    store = JobStore(make_engine(database_url))
    held = store.create("m", {}, None, None, owner="a", lease_seconds=0.2)
    lost = store.create("m", {}, None, None, owner="a", lease_seconds=0.2)
    time.sleep(0.3)
    assert store.renew_leases("a", 60, {held}) == 1  # the heartbeat renews only what "a" still holds
    assert [row.id for row in store.claim("a", 30, include_own=False, held={held})] == [lost]
    assert store.claim("b", 30, include_own=False) == []  # both leases are fresh again
