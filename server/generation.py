"""What the GPU worker thread does with one job: pipeline run -> encode -> stored files -> job row."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pipelines.adapters import AdapterError, AdapterStore
from pipelines.generate import run_img2img
from pipelines.postprocess.safety import ReplaceMode, SafetyFilter
from pipelines.postprocess.encode import to_base64, to_png
from pipelines.registry import ModelNotAvailable, ModelRegistry
from pipelines.spec import GenerationSpec
from server.gpu_worker import JobFailed, WorkItem
from server.jobs import JobStore
from server.storage import OutputStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobPayload:
    spec: GenerationSpec
    file_stem: str
    base64: bool
    temp: bool
    safety_checker: bool
    safety_checker_type: ReplaceMode


class JobRunner:
    """Callable handed to GpuWorker. Runs on the worker thread; touches the registry, the store and the job row."""

    def __init__(
        self,
        registry: ModelRegistry,
        adapters: AdapterStore,
        store: OutputStore,
        jobs: JobStore,
        safety: SafetyFilter | None,
        max_loras: int,
    ) -> None:
        self.registry = registry
        self.adapters = adapters
        self.store = store
        self.jobs = jobs
        self.safety = safety
        self.max_loras = max_loras

    def __call__(self, item: WorkItem) -> dict[str, Any]:
        payload: JobPayload = item.payload
        self.jobs.mark_running(item.job_id)
        started = time.perf_counter()
        try:
            model = self.registry.get(payload.spec.model_id)
            result = run_img2img(model, payload.spec, self.adapters, self.max_loras)
            images, flags = result.images, [False] * len(result.images)
            if payload.safety_checker:
                # The route refuses safety_checker=yes when no detector exists, so this is never a silent pass.
                assert self.safety is not None
                images, flags = self.safety.apply(images, payload.safety_checker_type)
            outputs = []
            encode_started = time.perf_counter()
            for index, image in enumerate(images):
                png = to_png(image)
                b64 = to_base64(png) if payload.base64 else None
                stored = self.store.save(payload.file_stem, index, png, b64, payload.temp)
                outputs.append({"area": stored.area, "image": stored.image_name, "base64": stored.base64_name})
        except (ModelNotAvailable, AdapterError) as exc:
            self.jobs.fail(item.job_id, str(exc))
            raise JobFailed(str(exc)) from exc
        except Exception as exc:
            log.exception("job %s failed in the pipeline", item.job_id)
            message = "Internal server error. Please try again."
            self.jobs.fail(item.job_id, message)
            raise JobFailed(message, http_status=500) from exc
        record = {
            "outputs": outputs,
            "generation_time": round(time.perf_counter() - started, 3),
            "scheduler_used": result.scheduler_used,
            "karras_applied": result.karras_applied,
            "ignored": result.ignored,
            "nsfw_content_detected": any(flags),
            "timings": {**result.timings, "encode": round(time.perf_counter() - encode_started, 4)},
        }
        self.jobs.finish(item.job_id, record)
        log.info(
            "job %s done model=%s generate=%.3fs total=%.3fs",
            item.job_id, payload.spec.model_id, result.timings.get("generate", 0.0), record["generation_time"],
        )
        return record
