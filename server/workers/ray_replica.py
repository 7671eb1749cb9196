"""GpuReplica: one Ray Serve replica per GPU, running the jobs whose ids the ingress sends it.

It holds the embedded backend's GPU side (LocalGpu: registry, adapters, batching worker) and reads each
job, inputs included, from the shared job table; server/ray_backend.py explains the whole design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ray import serve

from pipelines.config import load_config
from pipelines.fast_path import apply_torch_threads
from pipelines.registry import resolve_device
from server.io.stores import make_store
from server.jobs.record import InputsMissing, read_record
from server.jobs.store import UNFINISHED, JobStore, make_engine
from server.ops.metrics import Metrics
from server.ops.settings import Settings
from server.workers.local_gpu import build_local_gpu, make_safety
from server.workers.queue import JobFailed, JobMoved, WorkItem

log = logging.getLogger(__name__)

GPU_DEPLOYMENT = "GpuReplica"


class GpuReplica:
    """One Ray Serve replica per GPU: the embedded backend's GPU side, fed job ids by the ingress."""

    def __init__(self, settings: Settings) -> None:
        self.replica = serve.get_replica_context().replica_id.to_full_id_str()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.jobs = JobStore(make_engine(settings.db_url()), upgrade=settings.db_upgrade_at_start())
        self.load_seconds: list[float] = []
        metrics = Metrics()
        # Before any model loads. Automatic leaves torch on OMP_NUM_THREADS, which Ray sets to ray_num_cpus.
        apply_torch_threads(settings.torch_threads, resolve_device(settings.device))
        self.gpu = build_local_gpu(settings, load_config(settings.config), self.jobs, make_store(settings), make_safety(settings),
                                   metrics, max_loaded=settings.ray_models_per_replica)
        self.gpu.registry.on_load = lambda seconds: self.load_seconds.append(seconds)
        self.gpu.start()
        # The registry keeps the same K models, least recently used first, so Serve's view of what this
        # replica holds (used for routing) and what is really on its GPU stay the same.
        async def resident(model_id: str) -> str:  # a plain function: Serve keeps its LRU state on it
            return await self._load(model_id)

        self.resident = serve.multiplexed(max_num_models_per_replica=settings.ray_models_per_replica)(resident)

    async def _load(self, model_id: str) -> str:
        try:
            await asyncio.wrap_future(self.gpu.call(lambda: self.gpu.registry.get(model_id) and None))
        except Exception as exc:  # the job's own run reports the error (e.g. "run sdgate pull")
            log.warning("model %s did not load on %s: %s", model_id, self.replica, exc)
            raise
        return model_id

    async def run(self, job_id: int, owner: str | None) -> dict[str, Any]:
        """Run one job of the model this request was routed for; the answer also reports this replica."""
        model_id = serve.get_multiplexed_model_id()
        row = await asyncio.to_thread(self.jobs.get, job_id)
        if row is None or row.status not in UNFINISHED:
            return self._answer("ended")
        with contextlib.suppress(Exception):
            await self.resident(model_id)
        try:
            record = read_record(row.params, row.schema_version)
            payload = record.payload(await asyncio.to_thread(self.jobs.inputs, job_id))
        except (InputsMissing, KeyError, TypeError, ValueError, LookupError):
            return self._answer("ended")  # ended by another copy while this one was on its way
        item = WorkItem(job_id, payload, owner, priority=record.priority)
        self.gpu.submit(item)
        try:
            record = await asyncio.shield(asyncio.wrap_future(item.future))
        except asyncio.CancelledError:
            self.gpu.cancel(item)  # not started yet: it stays queued in the table for the next send
            raise
        except JobMoved:
            return self._answer("moved")
        except JobFailed as exc:
            return self._answer("failed", message=str(exc), http_status=exc.http_status)
        return self._answer("success", record=record)

    async def warm(self) -> dict[str, Any]:
        model_id = serve.get_multiplexed_model_id()
        await self.resident(model_id)
        seconds = await asyncio.wrap_future(self.gpu.warm(model_id))
        return self._answer("warm", seconds=seconds)

    async def reload(self) -> dict[str, Any]:
        """Load the model here, or read its files again if it was loaded already (after `sdgate pull`)."""
        model_id = serve.get_multiplexed_model_id()
        was_loaded = model_id in self.gpu.loaded_ids()
        await self.resident(model_id)
        if was_loaded:
            await asyncio.wrap_future(self.gpu.reload(model_id))
        return self._answer("reloaded")

    def _answer(self, outcome: str, **fields: Any) -> dict[str, Any]:
        loads, self.load_seconds = self.load_seconds, []
        report = {"replica": self.replica, "loaded": self.gpu.loaded_ids(), "loads": loads}
        return {"outcome": outcome, "report": report, **fields}
