"""Dispatcher: a job is a row (with its inputs on disk) before it is queued; unfinished rows are re-queued at start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from server.gpu_worker import GpuWorker, QueueFull, WorkItem
from server.job_codec import InputsMissing, JobPayload, payload_from_json, payload_to_json, save_inputs
from server.jobs import JobStore

log = logging.getLogger(__name__)


class Dispatcher:
    """Owns job acceptance. Components: the job table, the GPU worker, the data dir for inputs."""

    def __init__(self, jobs: JobStore, worker: GpuWorker, data_dir: Path, max_queue: int, max_attempts: int) -> None:
        self.jobs = jobs
        self.worker = worker
        self.data_dir = data_dir
        self.max_queue = max_queue
        self.max_attempts = max_attempts

    def submit(self, payload: JobPayload, meta: dict[str, Any], webhook: str | None, track_id: str | None) -> WorkItem:
        """Persist, then queue. Raises QueueFull when SDGATE_MAX_QUEUE jobs are unfinished."""
        if self.worker.depth() >= self.max_queue:
            raise QueueFull
        save_inputs(payload, self.data_dir)
        params = payload_to_json(payload) | {"meta": meta}
        job_id = self.jobs.create(payload.spec.model_id, params, webhook, track_id)
        item = WorkItem(job_id, payload)
        self.worker.submit(item)
        return item

    def recover(self) -> int:
        """Re-queue jobs a previous process accepted but did not finish. Runs before the server takes requests."""
        requeued = 0
        for row in self.jobs.unfinished():
            if row.attempts >= self.max_attempts:
                self.jobs.fail(row.id, f"Job failed: the server stopped during each of its {row.attempts} attempts")
                continue
            try:
                payload = payload_from_json(row.params, self.data_dir)
            except (InputsMissing, KeyError, TypeError) as exc:
                log.warning("job %s cannot be resumed: %s", row.id, exc)
                self.jobs.fail(row.id, "Job failed: its inputs were lost while the server was down")
                continue
            self.jobs.requeue(row.id)
            self.worker.submit(WorkItem(row.id, payload))
            requeued += 1
        if requeued:
            log.info("re-queued %d unfinished jobs", requeued)
        return requeued
