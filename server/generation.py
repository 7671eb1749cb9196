"""What the GPU worker thread does with one job: pipeline run -> safety -> encode -> stored files -> job row."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from pipelines.adapters import AdapterError, AdapterStore
from pipelines.generate import run_img2img
from pipelines.postprocess.encode import to_base64, to_png
from pipelines.postprocess.safety import SafetyFilter
from pipelines.registry import ModelNotAvailable, ModelRegistry
from pipelines.spec import GenerationResult
from server.gpu_worker import JobFailed, WorkItem
from server.job_codec import JobPayload, delete_inputs
from server.jobs import JobStore
from server.metrics import Metrics
from server.storage import OutputStore

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
    data_dir: Path
    max_loras: int = 8

    def __call__(self, item: WorkItem) -> dict[str, Any]:
        payload: JobPayload = item.payload
        queued_for = self.jobs.mark_running(item.job_id)
        self.metrics.queue_wait.observe(queued_for)
        started = time.perf_counter()
        try:
            model = self.registry.get(payload.spec.model_id)
            load_seconds = time.perf_counter() - started
            result = run_img2img(model, payload.spec, self.adapters, self.max_loras)
            result.timings["load"] = load_seconds
            images, flags = result.images, [False] * len(result.images)
            if payload.safety_checker:
                # The route refuses safety_checker=yes when no detector exists, so this is never a silent pass.
                assert self.safety is not None
                images, flags = self.safety.apply(images, payload.safety_checker_type)
            record = self._store(payload, result, images, flags, started)
        except (ModelNotAvailable, AdapterError) as exc:
            self._fail(item, str(exc))
            raise JobFailed(str(exc)) from exc
        except torch.cuda.OutOfMemoryError as exc:
            # Give the cached blocks back so the next job starts from a clean allocator.
            torch.cuda.empty_cache()
            log.warning("job %s ran out of GPU memory", item.job_id)
            self._fail(item, OUT_OF_MEMORY)
            raise JobFailed(OUT_OF_MEMORY, http_status=500) from exc
        except Exception as exc:
            log.exception("job %s failed in the pipeline", item.job_id)
            self._fail(item, INTERNAL_ERROR)
            raise JobFailed(INTERNAL_ERROR, http_status=500) from exc
        self.jobs.finish(item.job_id, record)
        self._forget_inputs(payload.file_stem)
        self.metrics.jobs.labels("success").inc()
        self.metrics.generation.observe(record["generation_time"])
        timings = {"queue": round(queued_for, 4), **record["timings"]}
        log.info("job %s success model=%s %s", item.job_id, payload.spec.model_id,
                 " ".join(f"{k}={v:.3f}s" for k, v in timings.items()),
                 extra={"job_id": item.job_id, "model_id": payload.spec.model_id, "timings": timings})
        return record

    def _store(self, payload: JobPayload, result: GenerationResult, images: list[Image.Image], flags: list[bool],
               started: float) -> dict[str, Any]:
        outputs = []
        encode_started = time.perf_counter()
        for index, image in enumerate(images):
            png = to_png(image)
            b64 = to_base64(png) if payload.base64 else None
            # Names come from the job's stem: a re-run after a crash overwrites instead of duplicating.
            stored = self.store.save(payload.file_stem, index, png, b64, payload.temp)
            outputs.append({"area": stored.area, "image": stored.image_name, "base64": stored.base64_name})
        timings = {key: round(value, 4) for key, value in result.timings.items()}
        timings["encode"] = round(time.perf_counter() - encode_started, 4)
        return {
            "outputs": outputs,
            "generation_time": round(time.perf_counter() - started, 3),
            "scheduler_used": result.scheduler_used,
            "karras_applied": result.karras_applied,
            "ignored": result.ignored,
            "nsfw_content_detected": any(flags),
            "timings": timings,
        }

    def _fail(self, item: WorkItem, message: str) -> None:
        self.jobs.fail(item.job_id, message)
        self._forget_inputs(item.payload.file_stem)
        self.metrics.jobs.labels("failed").inc()

    def _forget_inputs(self, stem: str) -> None:
        delete_inputs(stem, self.data_dir)
