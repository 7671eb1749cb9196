"""What the GPU worker thread does with one job: pipeline run -> safety -> encode -> stored files -> job row."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from pipelines.adapters import AdapterError, AdapterStore
from pipelines.generate import run_batch
from pipelines.postprocess.encode import to_base64, to_png
from pipelines.postprocess.safety import SafetyFilter
from pipelines.registry import ModelNotAvailable, ModelRegistry
from pipelines.spec import GenerationResult
from server.io.storage import OutputStore
from server.jobs.record import JobPayload
from server.jobs.store import JobStore
from server.ops.metrics import Metrics
from server.workers.queue import JobFailed, JobMoved, WorkItem

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error. Please try again."
OUT_OF_MEMORY = "The GPU ran out of memory for this job; try fewer samples or a smaller init_image."


@dataclass
class JobRunner:
    """Callable handed to GpuWorker. Runs on the worker thread; touches the registry, the store and the job row."""

    registry: ModelRegistry
    adapters: AdapterStore
    store: OutputStore
    jobs: JobStore
    safety: SafetyFilter | None
    metrics: Metrics
    max_loras: int = 8

    def __call__(self, items: list[WorkItem]) -> list[Any]:
        """One or more compatible jobs; returns each job's record or the JobFailed it ended with."""
        outcomes: dict[int, Any] = {}
        held, waits = [], []
        for item in items:
            wait = self.jobs.mark_running(item.job_id, item.owner)
            if wait is None:  # another server took the job over while it waited here
                outcomes[item.job_id] = JobMoved(item.job_id)
                continue
            held.append(item)
            waits.append(wait)
            self.metrics.queue_wait.observe(wait)
        if held:
            for item, outcome in zip(held, self._run(held, waits), strict=True):
                outcomes[item.job_id] = outcome
        return [outcomes[item.job_id] for item in items]

    def _run(self, items: list[WorkItem], waits: list[float]) -> list[Any]:
        payloads: list[JobPayload] = [item.payload for item in items]
        started = time.perf_counter()
        try:
            model = self.registry.get(payloads[0].spec.model_id)
            load_seconds = time.perf_counter() - started
            results = run_batch(model, [p.spec for p in payloads], self.adapters, self.max_loras)
        except (ModelNotAvailable, AdapterError) as exc:
            return [self._fail(item, str(exc), exc) for item in items]
        except torch.cuda.OutOfMemoryError as exc:
            # Give the cached blocks back so the next job starts from a clean allocator.
            torch.cuda.empty_cache()
            log.warning("jobs %s ran out of GPU memory", [item.job_id for item in items])
            return [self._fail(item, OUT_OF_MEMORY, exc, 500) for item in items]
        except Exception as exc:
            log.exception("jobs %s failed in the pipeline", [item.job_id for item in items])
            return [self._fail(item, INTERNAL_ERROR, exc, 500) for item in items]
        outcomes: list[Any] = []
        for item, payload, result, wait in zip(items, payloads, results, waits, strict=True):
            result.timings["load"] = load_seconds
            try:
                outcomes.append(self._finish(item, payload, result, wait, started))
            except Exception as exc:  # safety or storage failed for this job only
                log.exception("job %s failed after generation", item.job_id)
                outcomes.append(self._fail(item, INTERNAL_ERROR, exc, 500))
        return outcomes

    def _finish(self, item: WorkItem, payload: JobPayload, result: GenerationResult, wait: float,
                started: float) -> dict[str, Any] | JobMoved:
        images, flags = result.images, [False] * len(result.images)
        if payload.output.safety_checker:
            # The route refuses safety_checker=yes when no detector exists, so this is never a silent pass.
            assert self.safety is not None
            images, flags = self.safety.apply(images, payload.output.safety_checker_type)
        record = self._store(payload, result, images, flags, started)
        record["timings"] = {"queue": round(wait, 4), **record["timings"]}
        if not self.jobs.finish(item.job_id, record):
            # A re-sent copy of this job ended it first; our files overwrote the same names, the row stays as it was.
            log.info("job %s had already ended; this run changed nothing", item.job_id)
            return JobMoved(item.job_id)
        self.metrics.jobs.labels("success").inc()
        self.metrics.generation.observe(record["generation_time"])
        timings = record["timings"]
        log.info("job %s success model=%s %s", item.job_id, payload.spec.model_id,
                 " ".join(f"{k}={v:.3f}" for k, v in timings.items()),
                 extra={"job_id": item.job_id, "model_id": payload.spec.model_id, "timings": timings})
        return record

    def _store(self, payload: JobPayload, result: GenerationResult, images: list[Image.Image], flags: list[bool],
               started: float) -> dict[str, Any]:
        outputs = []
        encode_started = time.perf_counter()
        for index, image in enumerate(images):
            png = to_png(image)
            b64 = to_base64(png) if payload.output.base64 else None
            # Names come from the job's stem: a re-run after a crash overwrites instead of duplicating.
            stored = self.store.save(payload.output.file_stem, index, png, b64, payload.output.temp)
            outputs.append({"area": stored.area, "image": stored.image_name, "base64": stored.base64_name})
        timings = {key: round(value, 4) for key, value in result.timings.items()}
        timings["encode"] = round(time.perf_counter() - encode_started, 4)
        return {
            "outputs": outputs,
            "generation_time": round(time.perf_counter() - started, 3),
            "scheduler_used": result.scheduler_used,
            "karras_applied": result.karras_applied,
            "ignored": result.ignored,
            "meta": result.meta,
            "nsfw_content_detected": any(flags),
            "timings": timings,
        }

    def _fail(self, item: WorkItem, message: str, cause: BaseException, http_status: int = 200) -> Exception:
        if not self.jobs.fail(item.job_id, message):
            return JobMoved(item.job_id)  # a re-sent copy already ended it: that outcome stands
        self.metrics.jobs.labels("failed").inc()
        failure = JobFailed(message, http_status)
        failure.__cause__ = cause
        return failure
