"""The job table (SQLAlchemy Core): a job is a row before it is queued, and fetch reads the same row.

Status moves queued -> running -> success | failed, each step one small function. SQLite in the data dir
by default (WAL, so readers never wait for the worker's writes); any SQLAlchemy URL works.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine

from server.jobs import migrate

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
    # The server that holds the job and until when; a job whose lease lapses (its server died) is
    # claimed by another server sharing this table, or by the same server when it restarts.
    Column("owner", String(64)),
    Column("lease_until", Float),
    # What the row holds (migration 0002; rows from v0.1 get the defaults: version 1 img2img jobs on the v6 route).
    Column("schema_version", Integer, nullable=False, server_default="1"),
    Column("task", String(32), nullable=False, server_default="img2img"),
    Column("route", String(200), nullable=False, server_default="/api/v6/images/img2img"),
    sqlite_autoincrement=True,
)

# Input images live with the job (not on one server's disk), so any server sharing the table can run it.
job_inputs = Table(
    "job_inputs",
    metadata,
    Column("job_id", Integer, primary_key=True),
    Column("name", String(16), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# Webhook deliveries live in the same database and are written in the same transaction that ends the
# job, so a crash can never end a job without leaving its webhook due (the outbox pattern).
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    sqlite_autoincrement=True,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
)

UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class Delivery:
    id: int
    job_id: int
    url: str
    attempts: int


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
    owner: str | None = None
    lease_until: float | None = None
    schema_version: int = 1
    task: str = "img2img"
    route: str = "/api/v6/images/img2img"


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

    def __init__(self, engine: Engine, upgrade: bool = True) -> None:
        """Brings the database to the current schema (migrate.upgrade), or with upgrade=False only checks
        that it is there already and raises migrate.SchemaOutdated otherwise."""
        self.engine = engine
        if upgrade:
            migrate.upgrade(engine)
        else:
            migrate.check(engine)

    def create(self, model_id: str, params: dict[str, Any], webhook: str | None, track_id: str | None,
               owner: str | None = None, lease_seconds: float = 0.0, inputs: dict[str, bytes] | None = None,
               schema_version: int = 1, task: str = "img2img", route: str = "/api/v6/images/img2img") -> int:
        """The job row and its input images, in one transaction: committed before the client hears back."""
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(jobs).values(
                    status="queued",
                    model_id=model_id,
                    params=params,
                    webhook=webhook,
                    track_id=track_id,
                    attempts=0,
                    created_at=now,
                    owner=owner,
                    lease_until=now + lease_seconds,
                    schema_version=schema_version,
                    task=task,
                    route=route,
                )
            )
            job_id = int(result.inserted_primary_key[0])
            for name, data in (inputs or {}).items():
                conn.execute(insert(job_inputs).values(job_id=job_id, name=name, data=data))
            return job_id

    def inputs(self, job_id: int) -> dict[str, bytes]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_inputs.c.name, job_inputs.c.data).where(job_inputs.c.job_id == job_id))
            return {name: bytes(data) for name, data in rows}

    def mark_running(self, job_id: int, owner: str | None = None) -> float | None:
        """Count an attempt and return the seconds the job waited; None if another server now holds it."""
        now = time.time()
        with self.engine.begin() as conn:
            query = update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED))
            if owner is not None:
                query = query.where(jobs.c.owner == owner)
            changed = conn.execute(
                query.values(status="running", started_at=now, attempts=jobs.c.attempts + 1)
            ).rowcount
            if not changed:
                return None
            created = conn.execute(select(jobs.c.created_at).where(jobs.c.id == job_id)).scalar_one()
        return max(0.0, now - created)

    def renew_leases(self, owner: str, seconds: float, job_ids: Collection[int]) -> int:
        """Heartbeat: extend the leases of the unfinished jobs this server still holds in memory.

        Only those: a job this server lost track of lets its lease lapse, and is then claimed again.
        """
        if not job_ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(
                update(jobs).where(jobs.c.owner == owner, jobs.c.status.in_(UNFINISHED), jobs.c.id.in_(list(job_ids)))
                .values(lease_until=time.time() + seconds)
            ).rowcount

    def claim(self, owner: str, seconds: float, include_own: bool, held: Collection[int] = ()) -> list[JobRow]:
        """Take over unfinished jobs whose lease lapsed (and, at start-up, this server's own), oldest first.

        `held` are the jobs this server still has in memory: never claimed again. Each claim is a
        conditional update, so when two servers race for a job exactly one wins.
        """
        now = time.time()
        lapsed = or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now)
        claimable = or_(lapsed, jobs.c.owner == owner) if include_own else lapsed
        if held:
            claimable = and_(claimable, jobs.c.id.not_in(list(held)))
        claimed = []
        with self.engine.connect() as conn:
            candidates = conn.execute(
                select(jobs.c.id).where(jobs.c.status.in_(UNFINISHED), claimable).order_by(jobs.c.id)
            ).scalars().all()
        for job_id in candidates:
            with self.engine.begin() as conn:
                won = conn.execute(
                    update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED), claimable)
                    .values(owner=owner, lease_until=now + seconds)
                ).rowcount
            if won:
                row = self.get(job_id)
                if row is not None:
                    claimed.append(row)
        return claimed

    def finish(self, job_id: int, result: dict[str, Any]) -> bool:
        return self._end(job_id, status="success", result=result)

    def fail(self, job_id: int, error: str) -> bool:
        return self._end(job_id, status="failed", error=error)

    def _end(self, job_id: int, **values: Any) -> bool:
        """End an unfinished job; False if it had ended already (a re-sent copy finished first): reported once."""
        now = time.time()
        with self.engine.begin() as conn:
            ended = conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED)).values(finished_at=now, **values)
            ).rowcount
            if not ended:
                return False
            conn.execute(job_inputs.delete().where(job_inputs.c.job_id == job_id))  # done: inputs no longer needed
            webhook = conn.execute(select(jobs.c.webhook).where(jobs.c.id == job_id)).scalar_one_or_none()
            if webhook:
                conn.execute(insert(webhook_outbox).values(
                    job_id=job_id, url=webhook, status="pending", attempts=0, next_attempt_at=now, created_at=now
                ))
            return True

    def requeue(self, job_id: int) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(UNFINISHED)).values(status="queued")
            ).rowcount)

    def unfinished(self) -> list[JobRow]:
        """Every queued or running job, oldest first (whoever holds it)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.status.in_(UNFINISHED)).order_by(jobs.c.id)).mappings()
            return [JobRow(**row) for row in rows]

    def webhook_status(self, job_id: int) -> str:
        """"" without a webhook; pending / delivered / failed once the job has ended."""
        with self.engine.connect() as conn:
            status = conn.execute(select(webhook_outbox.c.status).where(webhook_outbox.c.job_id == job_id)).scalar()
            if status is None:
                has_webhook = conn.execute(select(jobs.c.webhook).where(jobs.c.id == job_id)).scalar()
                return "pending" if has_webhook else ""
            return str(status)

    def due_deliveries(self, now: float, limit: int = 20) -> list[Delivery]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(webhook_outbox.c.id, webhook_outbox.c.job_id, webhook_outbox.c.url, webhook_outbox.c.attempts)
                .where(webhook_outbox.c.status == "pending", webhook_outbox.c.next_attempt_at <= now)
                .order_by(webhook_outbox.c.next_attempt_at)
                .limit(limit)
            ).all()
        return [Delivery(*row) for row in rows]

    def record_attempt(
        self, delivery: Delivery, status_code: int | None, error: str | None, next_attempt_at: float | None, final: bool
    ) -> None:
        """One delivery attempt: logged, then the delivery is delivered, failed, or due again at next_attempt_at."""
        now = time.time()
        attempt = delivery.attempts + 1
        delivered = status_code is not None and 200 <= status_code < 300
        status = "delivered" if delivered else "failed" if final else "pending"
        with self.engine.begin() as conn:
            conn.execute(insert(webhook_attempts).values(
                delivery_id=delivery.id, attempt=attempt, at=now, status_code=status_code, error=error
            ))
            conn.execute(update(webhook_outbox).where(webhook_outbox.c.id == delivery.id).values(
                attempts=attempt,
                status=status,
                last_error=error,
                next_attempt_at=next_attempt_at if next_attempt_at is not None else now,
                finished_at=now if status != "pending" else None,
            ))

    def attempts_for(self, job_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(webhook_attempts)
                .join(webhook_outbox, webhook_outbox.c.id == webhook_attempts.c.delivery_id)
                .where(webhook_outbox.c.job_id == job_id)
                .order_by(webhook_attempts.c.attempt)
            ).mappings()
            return [dict(row) for row in rows]

    def get(self, job_id: int) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return JobRow(**row) if row else None

    def count_unfinished(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(jobs.c.status.in_(UNFINISHED))).scalar_one())
