"""Dispatcher: a job is a row (with its inputs) before it is queued; jobs left unfinished are taken over.

Every job carries a lease held by the server that queued it. A live server renews its leases
(heartbeat); at start a server takes back its own unfinished jobs, and while running it takes over
jobs whose lease lapsed because their server died. Several servers may share one job table.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from pipelines.spec import TaskSpec
from server.jobs.record import InputsMissing, JobPayload, JobRecord, read_record
from server.jobs.store import JobRow, JobStore
from server.workers.queue import JobQueue, QueueFull, WorkItem

log = logging.getLogger(__name__)


def server_id(data_dir: Path) -> str:
    """A stable id per data dir, so a restarted server recognises (and resumes at once) its own jobs."""
    path = data_dir / "server-id"
    if not path.exists():
        path.write_text(uuid.uuid4().hex)
    return path.read_text().strip()


class Dispatcher:
    """Owns job acceptance and leases. Components: the job table, the GPU worker, this server's id."""

    def __init__(self, jobs: JobStore, worker: JobQueue, owner: str, max_queue: int, max_attempts: int,
                 lease_seconds: float) -> None:
        self.jobs = jobs
        self.worker = worker
        self.owner = owner
        self.max_queue = max_queue
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds

    def submit(self, spec: TaskSpec, record: JobRecord, inputs: dict[str, bytes], webhook: str | None,
               track_id: str | None) -> WorkItem:
        """Persist, then queue. Raises QueueFull when SDGATE_MAX_QUEUE jobs are unfinished here."""
        if self.worker.depth() >= self.max_queue:
            raise QueueFull
        job_id = self.jobs.create(spec.model_id, record.model_dump(mode="json"), webhook, track_id, owner=self.owner,
                                  lease_seconds=self.lease_seconds, inputs=inputs, schema_version=record.schema_version,
                                  task=record.task, route=record.route)
        item = WorkItem(job_id, JobPayload(spec, record.output), self.owner, priority=record.priority)
        self.worker.submit(item)
        return item

    def heartbeat(self) -> int:
        return self.jobs.renew_leases(self.owner, self.lease_seconds, self.worker.held_ids())

    def recover(self, include_own: bool = True) -> int:
        """Queue the jobs this server may take: its own at start-up, and any whose lease lapsed."""
        requeued = 0
        for row in self.jobs.claim(self.owner, self.lease_seconds, include_own, self.worker.held_ids()):
            if self._resume(row):
                requeued += 1
        if requeued:
            log.info("queued %d jobs left unfinished by a stopped server", requeued)
        return requeued

    def _resume(self, row: JobRow) -> bool:
        if row.attempts >= self.max_attempts:
            self.jobs.fail(row.id, f"Job failed: the server stopped during each of its {row.attempts} attempts")
            return False
        try:
            record = read_record(row.params, row.schema_version)
            payload = record.payload(self.jobs.inputs(row.id))
        except (InputsMissing, KeyError, TypeError, ValueError, LookupError) as exc:
            log.warning("job %s cannot be resumed: %s", row.id, exc)
            self.jobs.fail(row.id, "Job failed: its inputs were lost while the server was down")
            return False
        self.jobs.requeue(row.id)
        self.worker.submit(WorkItem(row.id, payload, self.owner, priority=record.priority))
        return True
