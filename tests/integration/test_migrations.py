"""Schema versions of the job database: fresh databases, v0.1 databases, PostgreSQL, the CLI."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, make_url, select, text

from server.jobs import migrate
from server.jobs.store import JobStore, job_inputs, jobs, make_engine, metadata

V01_DB = Path(__file__).resolve().parents[1] / "fixtures" / "v01-jobs.db"
V01_COLUMNS = ("id", "status", "model_id", "params", "result", "error", "webhook", "track_id", "attempts",
               "created_at", "started_at", "finished_at", "owner", "lease_until")


def drift(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, metadata)


def v01_copy(tmp_path: Path) -> Engine:
    path = tmp_path / "v01-jobs.db"
    shutil.copy(V01_DB, path)
    return make_engine(f"sqlite:///{path}")


def snapshot(engine: Engine) -> tuple[list[tuple], list[tuple]]:
    """The v0.1 columns of every job row, and every input image, read without the current Table."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {', '.join(V01_COLUMNS)} FROM jobs ORDER BY id")).all()
        inputs = conn.execute(text("SELECT job_id, name, data FROM job_inputs ORDER BY job_id, name")).all()
    return [tuple(row) for row in rows], [tuple(row) for row in inputs]


def test_a_fresh_database_upgrades_to_head_without_drift(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    assert migrate.current_revision(engine) is None and migrate.head_revision() == "0002"
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert drift(engine) == []
    store = JobStore(engine, upgrade=False)
    job_id = store.create("tiny-sd15", {"a": 1}, None, None, task="txt2img", route="/api/v6/images/text2img")
    row = store.get(job_id)
    assert (row.schema_version, row.task, row.route) == (1, "txt2img", "/api/v6/images/text2img")
    assert store.get(store.create("m", {}, None, None)).route == "/api/v6/images/img2img"


def test_a_v01_database_is_stamped_then_upgraded_keeping_every_row(tmp_path: Path) -> None:
    engine = v01_copy(tmp_path)
    assert migrate.current_revision(engine) is None and "alembic_version" not in inspect(engine).get_table_names()
    before = snapshot(engine)
    assert [row[1] for row in before[0]] == ["success", "success", "failed", "queued", "queued"]
    assert [(job_id, name) for job_id, name, _ in before[1]] == [(4, "init"), (5, "init"), (5, "ip")]

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert snapshot(engine) == before
    assert drift(engine) == []
    with engine.connect() as conn:
        added = conn.execute(select(jobs.c.schema_version, jobs.c.task, jobs.c.route)).all()
    assert added == [(1, "img2img", "/api/v6/images/img2img")] * 5
    store = JobStore(engine, upgrade=False)
    assert store.get(5).params["spec"]["adapters"]["loras"] == [["tiny-lora-a", 0.8]]
    assert store.inputs(5).keys() == {"init", "ip"} and store.get(1).result["outputs"]
    # AUTOINCREMENT survived: ids go on from v0.1's last one.
    assert store.create("tiny-sd15", {}, None, None) == 6

    migrate.upgrade(engine)  # again: nothing to do
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert conn.execute(select(job_inputs.c.job_id)).scalars().all() == [4, 5, 5]
    assert len(snapshot(engine)[0]) == 6


def test_several_servers_upgrade_one_fresh_database_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    barrier, errors = threading.Barrier(4), []

    def start() -> None:
        engine = make_engine(url)
        barrier.wait()
        try:
            JobStore(engine)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = make_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision() and drift(engine) == []


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL (first on search_path), so no other test's tables are touched."""
    url = os.environ.get("SDGATE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SDGATE_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL and sets it)")
    schema = f"sdgate_migrations_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_a_fresh_postgres_database_upgrades_to_head_without_drift(postgres_schema_url: str) -> None:
    engine = make_engine(postgres_schema_url)
    try:
        assert migrate.current_revision(engine) is None and inspect(engine).get_table_names() == []
        store = JobStore(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert drift(engine) == []
        job_id = store.create("tiny-sd15", {"meta": {}}, None, None, schema_version=2, task="txt2img")
        assert (store.get(job_id).schema_version, store.get(job_id).task) == (2, "txt2img")
        JobStore(engine)  # again: nothing to do
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_a_server_that_must_not_upgrade_names_the_command(tmp_path: Path) -> None:
    engine = v01_copy(tmp_path)
    with pytest.raises(migrate.SchemaOutdated, match="sdgate db upgrade") as raised:
        JobStore(engine, upgrade=False)
    assert "none (made by v0.1)" in str(raised.value) and migrate.head_revision() in str(raised.value)
    assert migrate.current_revision(engine) is None  # checked, not changed
    JobStore(engine)
    assert JobStore(engine, upgrade=False).get(4).status == "queued"


def test_sdgate_db_upgrade_upgrades_a_v01_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import main

    monkeypatch.delenv("SDGATE_DATABASE_URL", raising=False)

    engine = v01_copy(tmp_path)
    url = engine.url.render_as_string(hide_password=False)
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert migrate.current_revision(engine) == migrate.head_revision()
    out = capsys.readouterr().out
    assert "revision before: none (made by v0.1)" in out and f"revision after: {migrate.head_revision()}" in out
    assert main(["db", "upgrade", "--data-dir", str(tmp_path / "data")]) == 0  # default URL: the data dir's SQLite
    assert migrate.current_revision(make_engine(f"sqlite:///{tmp_path / 'data' / 'jobs.db'}")) == "0002"
