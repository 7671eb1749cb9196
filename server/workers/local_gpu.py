"""The GPU side of a server: model registry, adapters, the job runner and the worker thread that runs it.

The embedded backend builds one in the server process; the Ray backend builds one in each GPU replica
(server/ray_backend.py). Both hand the same interface to the Dispatcher and the routes.
"""

from __future__ import annotations

from concurrent.futures import Future

from pipelines.adapters import AdapterStore
from pipelines.config import RegistryConfig
from pipelines.postprocess.safety import SafetyFilter, load_detector
from pipelines.registry import ModelRegistry, resolve_device
from pipelines.warmup import warm_up
from server.io.storage import OutputStore
from server.jobs.store import JobStore
from server.ops.metrics import Metrics
from server.ops.settings import Settings
from server.workers.queue import Batching, GpuWorker
from server.workers.runner import JobRunner


class LocalGpu(GpuWorker):
    """A GpuWorker that also owns the registry its jobs load models from."""

    def __init__(self, runner: JobRunner, batching: Batching | None) -> None:
        super().__init__(runner, batching)
        self.registry = runner.registry
        self.device = runner.registry.device

    def warm(self, model_id: str) -> Future:
        """Load and warm a model after the jobs queued before it; resolves to the load seconds."""
        return self.call(lambda: warm_up(self.registry, model_id))

    def reload(self, model_id: str) -> Future:
        """Read the model's files again (after `sdgate pull` replaced them); resolves to None."""
        return self.call(lambda: self.registry.reload(model_id) and None)

    def loaded_ids(self) -> list[str]:
        return self.registry.loaded_ids()

    def replicas(self) -> list[dict]:
        return []


def build_local_gpu(settings: Settings, config: RegistryConfig, jobs: JobStore, store: OutputStore,
                    safety: SafetyFilter | None, metrics: Metrics, max_loaded: int | None = None) -> LocalGpu:
    """Nothing is loaded here: models load on first use, or through warm()."""
    device = resolve_device(settings.device)
    registry = ModelRegistry(
        config, settings.data_dir, device, max_loaded or settings.max_loaded_models,
        on_load=metrics.model_load.observe, device_budget=settings.vram_budget, host_budget=settings.ram_budget,
        pinned=settings.pinned_ids(), on_event=lambda event: metrics.model_cache.labels(event).inc(),
        fast_path=settings.fast_path(device),
    )
    adapters = AdapterStore(config, settings.data_dir, registry.device, registry.dtype, settings.max_vaes)
    runner = JobRunner(registry, adapters, store, jobs, safety, metrics, settings.max_loras)
    batching = None
    if settings.batching:
        batching = Batching(key=lambda item: item.payload.spec.batch_key(), size=lambda item: item.payload.spec.samples,
                            window=settings.batch_window, max_images=settings.max_batch_images)
    return LocalGpu(runner, batching)


def make_safety(settings: Settings) -> SafetyFilter | None:
    """The safety filter, or None when no detector backend is available (routes then refuse safety_checker=yes)."""
    detector = load_detector(settings.safety_backend, settings.safety_checker_path, settings.nudenet_threshold)
    return SafetyFilter(detector, settings.safety_threshold_shift) if detector is not None else None
