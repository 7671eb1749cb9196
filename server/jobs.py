"""The job table (SQLAlchemy Core): a job is a row before it is queued, and fetch reads the same row.

Status moves queued -> running -> success | failed, each step one small function. SQLite in the data dir
by default (WAL, so readers never wait for the worker's writes); any SQLAlchemy URL works.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    # AUTOINCREMENT: ids are never reused, even after rows are deleted, so an old fetch link never shows a new job.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("status", String(16), nullable=False, index=True),
    Column("model_id", String(200), nullable=False),
    Column("params", JSON, nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("webhook", Text),
    Column("track_id", String(200)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    sqlite_autoincrement=True,
)

UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class JobRow:
    id: int
    status: str
    model_id: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    webhook: str | None
    track_id: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url, json_serializer=json.dumps)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class JobStore:
    """Owns the jobs table. Safe to call from the event loop and the worker thread (one connection per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def create(self, model_id: str, params: dict[str, Any], webhook: str | None, track_id: str | None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(jobs).values(
                    status="queued",
                    model_id=model_id,
                    params=params,
                    webhook=webhook,
                    track_id=track_id,
                    attempts=0,
                    created_at=time.time(),
                )
            )
            return int(result.inserted_primary_key[0])

    def mark_running(self, job_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(status="running", started_at=time.time(), attempts=jobs.c.attempts + 1)
            )

    def finish(self, job_id: int, result: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs).where(jobs.c.id == job_id).values(status="success", result=result, finished_at=time.time())
            )

    def fail(self, job_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs).where(jobs.c.id == job_id).values(status="failed", error=error, finished_at=time.time())
            )

    def get(self, job_id: int) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return JobRow(**row) if row else None

    def count_unfinished(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(jobs.c.status.in_(UNFINISHED))).scalar_one())
