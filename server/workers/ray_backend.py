"""The Ray Serve backend: the same FastAPI app as the ingress, GPU replicas chosen by model affinity.

Ray Serve keeps no accepted work (a request on a replica that dies ends in an error, and nothing
re-sends it), so the job table stays the source of truth. The ingress writes the job and its inputs,
keeps the job's lease while it is out, and sends only its id with `multiplexed_model_id = model_id`:
Serve routes it to a replica that already holds the model, else to the one holding the fewest. The
replica reads the job from the table and runs it like the embedded backend does. When a replica dies
or fails, the ingress re-sends the job (up to SDGATE_MAX_ATTEMPTS runs that started, SEND_LIMIT sends
in all); the ingress renews the leases only of the jobs it still holds, so when it dies, or drops a
job, the lease lapses and an ingress (the same one, or the next to start) takes the job over. Ending a
job is a conditional update, so a job is reported once even if two copies ran; file names come from
the job, so a second copy overwrites instead of duplicating.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from server.jobs.store import UNFINISHED, JobStore
from server.ops.metrics import Metrics
from server.ops.settings import Settings
from server.workers.queue import JobFailed, JobMoved, Throughput, WorkItem
from server.workers.ray_replica import GPU_DEPLOYMENT, GpuReplica

log = logging.getLogger(__name__)

INGRESS_DEPLOYMENT = "Ingress"
# Sends of one job that never reached a running replica before it fails (replicas dying around it,
# none schedulable); runs that did start are capped by SDGATE_MAX_ATTEMPTS.
SEND_LIMIT = 12


def absolute(settings: Settings) -> Settings:
    """Replicas may start in another working directory: every path they get must be absolute."""
    paths = {"config": settings.config.resolve(), "data_dir": settings.data_dir.resolve()}
    if settings.safety_checker_path is not None:
        paths["safety_checker_path"] = settings.safety_checker_path.resolve()
    return settings.model_copy(update=paths)


class RayWorker(Throughput):
    """The ingress side: sends each job to the GPU deployment and settles its future from the answer."""

    device = "ray"

    def __init__(self, handle: DeploymentHandle, jobs: JobStore, metrics: Metrics, max_attempts: int) -> None:
        super().__init__()
        self._handle = handle
        self._jobs = jobs
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._out: dict[int, tuple[WorkItem, DeploymentResponse | None]] = {}
        self._stopping = False
        self._replicas: dict[str, dict[str, Any]] = {}

    @classmethod
    def connect(cls, settings: Settings, jobs: JobStore, metrics: Metrics) -> RayWorker:
        """Join the cluster (inside a Serve replica it is joined already) and find the GPU deployment."""
        if not ray.is_initialized():  # an ingress outside Ray (plain uvicorn) joins the cluster that runs the GPUs
            ray.init(address=settings.ray_address or "auto", log_to_driver=False)
        handle = serve.get_deployment_handle(GPU_DEPLOYMENT, app_name=settings.ray_app)
        return cls(handle, jobs, metrics, settings.max_attempts)

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        yield  # batching happens on the replicas

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def is_alive(self) -> bool:
        return self._loop is not None and not self._stopping

    def depth(self) -> int:
        with self._lock:
            return len(self._out)

    def held_ids(self) -> set[int]:
        with self._lock:
            return set(self._out)

    def average_seconds(self) -> float:
        """Generation seconds per job over all replicas, which run their jobs side by side."""
        with self._lock:
            replicas = max(1, len(self._replicas))
        return super().average_seconds() / replicas

    def submit(self, item: WorkItem) -> Future:
        """Thread-safe; every job goes to Serve at once, so its autoscaler sees the whole backlog."""
        assert self._loop is not None, "start() first"
        with self._lock:
            self._out[item.job_id] = (item, None)
        # A fresh context: inside Serve the caller's would make this call a child of the HTTP request,
        # and Serve cancels children when their client disconnects; the job must outlive its request.
        self._loop.call_soon_threadsafe(
            lambda: self._loop.create_task(self._send(item), context=contextvars.Context()))  # type: ignore[union-attr]
        return item.future

    async def _send(self, item: WorkItem) -> None:
        """Send until the job has an answer. Every way out settles the future; a row left unfinished
        (stopping, or the table unreachable) lets its lease lapse and is claimed again."""
        started, sends = time.perf_counter(), 0
        try:
            while not self._stopping:
                sends += 1
                try:
                    response = self._handle.options(multiplexed_model_id=item.payload.spec.model_id).run.remote(
                        item.job_id, item.owner)
                    with self._lock:
                        self._out[item.job_id] = (item, response)
                    answer = await response
                    if answer["outcome"] == "ended" and await asyncio.to_thread(self._unfinished, item):
                        raise LookupError("the replica could not read the job")  # e.g. it sees another database
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    failure = "the request was cancelled"
                except Exception as exc:  # the replica died or broke (or stop() cancelled the request)
                    failure = f"{type(exc).__name__}: {exc}"
                else:
                    await self._retry(self._settle, item, answer)
                    self.record(answer.get("record", {}).get("generation_time", time.perf_counter() - started))
                    return
                if self._stopping:
                    return
                log.warning("job %s: no answer from its replica (%s)", item.job_id, failure)
                if not await self._retry(self._may_resend, item, sends):
                    return
                await asyncio.sleep(min(0.5 * sends, 5.0))  # a replacement replica takes seconds to start
        except Exception:
            log.exception("job %s: left to the job table (it is claimed again once its lease lapses)", item.job_id)
        finally:
            with self._lock:
                self._out.pop(item.job_id, None)
            if not item.future.done():
                item.future.set_exception(JobMoved(item.job_id))

    async def _retry(self, step: Callable[..., Any], *args: Any) -> Any:
        """A table read or write off the event loop, retried while the database is unreachable."""
        for attempt in itertools.count(1):
            try:
                return await asyncio.to_thread(step, *args)
            except Exception:
                if self._stopping or attempt >= 10:
                    raise
                log.exception("job table unreachable; retrying")
                await asyncio.sleep(min(attempt, 5))
        raise AssertionError("unreachable")

    def _unfinished(self, item: WorkItem) -> bool:
        row = self._jobs.get(item.job_id)
        return row is not None and row.status in UNFINISHED

    def _may_resend(self, item: WorkItem, sends: int) -> bool:
        """True to send the job again; otherwise its future is settled from the row."""
        row = self._jobs.get(item.job_id)
        if row is None or self._stopping:
            return False
        if row.status not in UNFINISHED:
            self._settle_from_row(item)
            return False
        if row.owner != item.owner:
            item.future.set_exception(JobMoved(item.job_id))
            return False
        if row.attempts >= self._max_attempts:  # runs that started: this job may be what kills replicas
            message = f"Job failed: its GPU replica stopped during each of its {row.attempts} attempts"
        elif sends >= SEND_LIMIT:  # sends that never started: no replica could take it
            message = f"Job failed: no GPU replica could take it ({sends} tries)"
        else:
            self._jobs.requeue(item.job_id)
            return True
        if self._jobs.fail(item.job_id, message):
            self._metrics.jobs.labels("failed").inc()
        self._settle_from_row(item)
        return False

    def _settle_from_row(self, item: WorkItem) -> None:
        row = self._jobs.get(item.job_id)
        if row is not None and row.status == "success":
            item.future.set_result(row.result)
        elif row is not None and row.status == "failed":
            item.future.set_exception(JobFailed(row.error or "Job failed"))
        else:
            item.future.set_exception(JobMoved(item.job_id))

    def _settle(self, item: WorkItem, answer: dict[str, Any]) -> None:
        self._note(answer["report"])
        outcome = answer["outcome"]
        if outcome == "success":
            record = answer["record"]
            self._metrics.jobs.labels("success").inc()
            self._metrics.generation.observe(record["generation_time"])
            self._metrics.queue_wait.observe(record["timings"]["queue"])
            item.future.set_result(record)
        elif outcome == "failed":
            self._metrics.jobs.labels("failed").inc()
            item.future.set_exception(JobFailed(answer["message"], answer["http_status"]))
        elif outcome == "moved":
            item.future.set_exception(JobMoved(item.job_id))
        else:
            self._settle_from_row(item)

    def _note(self, report: dict[str, Any]) -> None:
        for seconds in report["loads"]:
            self._metrics.model_load.observe(seconds)
        with self._lock:
            known = self._replicas.setdefault(report["replica"], {"replica": report["replica"], "loads": 0})
            known["loads"] += len(report["loads"])
            known["loaded"] = report["loaded"]

    def _model_call(self, method: str, model_id: str) -> Future:
        """Resolves to what the replica's method answered in "seconds" (warm: the load time), else None."""

        async def call() -> float | None:
            answer = await getattr(self._handle.options(multiplexed_model_id=model_id), method).remote()
            self._note(answer["report"])
            return answer.get("seconds")

        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    def warm(self, model_id: str) -> Future:
        return self._model_call("warm", model_id)

    def reload(self, model_id: str) -> Future:
        return self._model_call("reload", model_id)

    def loaded_ids(self) -> list[str]:
        with self._lock:
            return sorted({m for known in self._replicas.values() for m in known["loaded"]})

    def replicas(self) -> list[dict]:
        """What each replica reported last: its models and how many it loaded from disk so far."""
        with self._lock:
            return [dict(known) for known in self._replicas.values()]

    def stop(self, timeout: float = 30.0) -> None:
        """Let running jobs finish (up to timeout); requests still waiting for a replica are cancelled and
        their rows stay queued (a job already queued on a replica may still start: Serve drains replicas)."""
        self._stopping = True
        with self._lock:
            out = list(self._out.values())
        for item, response in out:
            row = self._jobs.get(item.job_id)
            if response is not None and row is not None and row.status == "queued" and self._loop is not None:
                self._loop.call_soon_threadsafe(response.cancel)
        deadline = time.monotonic() + timeout
        for item, _ in out:
            with contextlib.suppress(Exception):
                item.future.result(timeout=max(0.0, deadline - time.monotonic()))


def gpu_deployment(settings: Settings) -> Any:
    """The autoscaled GPU deployment, bound to its settings."""
    settings = absolute(settings)
    return serve.deployment(
        GpuReplica,
        name=GPU_DEPLOYMENT,
        ray_actor_options={"num_gpus": settings.ray_num_gpus, "num_cpus": settings.ray_num_cpus},
        max_ongoing_requests=settings.ray_max_ongoing_requests,
        autoscaling_config={
            "min_replicas": settings.ray_min_replicas,
            "initial_replicas": max(1, settings.ray_min_replicas),
            "max_replicas": max(settings.ray_max_replicas, settings.ray_min_replicas),
            "target_ongoing_requests": settings.ray_target_ongoing_requests,
            "upscale_delay_s": settings.ray_upscale_delay,
            "downscale_delay_s": settings.ray_downscale_delay,
            "look_back_period_s": settings.ray_autoscale_window,
        },
        graceful_shutdown_timeout_s=settings.shutdown_grace,
    ).bind(settings)
