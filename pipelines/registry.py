"""ModelRegistry: model ids from models.yaml -> loaded diffusers img2img pipelines, kept in a small LRU.

Nothing here downloads: every load passes `local_files_only=True`, so a model that `sdgate pull` has not
fetched yet fails fast with ModelNotAvailable instead of stalling a request on the network.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline
from huggingface_hub.errors import LocalEntryNotFoundError

from pipelines.config import ModelEntry, RegistryConfig
from pipelines.fast_path import FastPathOptions, apply_fast_path
from pipelines.model_cache import Move, TieredCache
from pipelines.sources import single_file_path

log = logging.getLogger(__name__)

PIPELINE_CLASSES = {"sd15": StableDiffusionImg2ImgPipeline, "sdxl": StableDiffusionXLImg2ImgPipeline}
# Loading builds modules under accelerate's init_empty_weights and diffusers' no_init_weights, which patch
# torch classes process-wide (nn.Module.register_parameter, nn.init). Two loads at once in one process (two
# devices' worker threads, or a server stopping while the next starts) can leave the patch in place and
# every later load then makes meta tensors. Every load and adapter injection in pipelines/ holds this lock.
LOAD_LOCK = threading.RLock()


class ModelNotFound(LookupError):
    """The id is not registered in models.yaml."""


class ModelNotAvailable(RuntimeError):
    """The id is registered but its files are not on this machine."""


@dataclass
class LoadedModel:
    model_id: str
    family: str
    pipe: StableDiffusionImg2ImgPipeline | StableDiffusionXLImg2ImgPipeline
    entry: ModelEntry
    load_seconds: float
    size_bytes: int
    # LoRA adapter names loaded into this pipeline's UNet / text encoders, least recently used first.
    loras: OrderedDict[str, None] = field(default_factory=OrderedDict)


def resolve_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def model_bytes(pipe: Any) -> int:
    """Parameter and buffer bytes of every torch module in the pipeline."""
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in component.parameters())
            total += sum(t.numel() * t.element_size() for t in component.buffers())
    return total


def default_budgets(device: str) -> tuple[int, int]:
    """(device bytes, host bytes) when the settings say 0: most of the GPU, half of the host's RAM."""
    host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    if device == "cuda":
        return int(torch.cuda.get_device_properties(0).total_memory * 0.85), host
    return host, host


class ModelRegistry:
    """Owns every loaded base pipeline. Components: config (models.yaml), device, dtype, a TieredCache.

    `get()` runs on the GPU worker thread; the lock only guards the bookkeeping against `loaded_ids()`
    from the event loop. `on_event(name)` reports cache hits, misses and evictions to metrics.
    """

    def __init__(
        self,
        config: RegistryConfig,
        data_dir: Path,
        device: str = "cpu",
        max_loaded: int = 1,
        on_load: Callable[[float], None] | None = None,
        device_budget: int = 0,
        host_budget: int = 0,
        pinned: frozenset[str] = frozenset(),
        on_event: Callable[[str], None] | None = None,
        fast_path: FastPathOptions | None = None,
    ) -> None:
        self.on_load = on_load
        self.on_event = on_event or (lambda _: None)
        self.config = config
        self.data_dir = data_dir
        self.device = device
        self.fast_path = fast_path or FastPathOptions.for_device(device)
        # fp16 halves memory and doubles speed on GPUs; CPUs have no fast fp16 kernels.
        self.dtype = self.fast_path.dtype(device)
        auto_device, auto_host = default_budgets(device)
        self.cache = TieredCache(device_budget or auto_device, host_budget or auto_host, max(1, max_loaded), pinned)
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def entry(self, model_id: str) -> ModelEntry:
        try:
            return self.config.models[model_id]
        except KeyError:
            raise ModelNotFound(f"Model not found: {model_id}") from None

    def loaded_ids(self) -> list[str]:
        """Models on the device, least recently used first."""
        with self._lock:
            return list(self.cache.device)

    def parked_ids(self) -> list[str]:
        """Models waiting in host RAM."""
        with self._lock:
            return list(self.cache.host)

    def get(self, model_id: str) -> LoadedModel:
        """The model on the device: from the device (hit), from host RAM (no disk read), or loaded from disk."""
        entry = self.entry(model_id)
        with self._lock:
            tier = self.cache.tier_of(model_id)
        if tier == "device":
            self.on_event("hit_device")
            model = self._models[model_id]
        elif tier == "host":
            self.on_event("hit_host")
            model = self._models[model_id]
            model.pipe.to(self.device)
        else:
            self.on_event("miss")
            model = self._load(model_id, entry)
            self._models[model_id] = model
        with self._lock:
            moves = self.cache.place_on_device(model_id, model.size_bytes)
        for move in moves:
            self._apply(move)
        return model

    def _apply(self, move: Move) -> None:
        model = self._models[move.model_id]
        if move.to == "host":
            model.pipe.to("cpu")
            self.on_event("evict_to_host")
        else:
            del self._models[move.model_id]
            self.on_event("evict_to_disk")
            if self.device == "cuda":
                torch.cuda.empty_cache()  # only on eviction, never per request
        log.info("model %s moved to %s", move.model_id, move.to)

    def reload(self, model_id: str) -> LoadedModel:
        """Drop the loaded copy (if any) and load the model's files again."""
        self.entry(model_id)
        with self._lock:
            self.cache.forget(model_id)
        self._models.pop(model_id, None)
        return self.get(model_id)

    def _load(self, model_id: str, entry: ModelEntry) -> LoadedModel:
        cls = PIPELINE_CLASSES[entry.family]
        started = time.perf_counter()
        extra = {"safety_checker": None, "requires_safety_checker": False} if entry.family == "sd15" else {}
        try:
            with LOAD_LOCK:
                pipe = self._read(model_id, entry, cls, extra)
        except (OSError, LocalEntryNotFoundError, ValueError) as exc:
            log.warning("model %s could not be loaded from local files: %s", model_id, exc)
            raise ModelNotAvailable(
                f"Model {model_id} is not available on this server yet; run `sdgate pull {model_id}`"
            ) from exc
        pipe.to(self.device)
        apply_fast_path(pipe, self.fast_path)
        pipe.set_progress_bar_config(disable=True)
        seconds = time.perf_counter() - started
        log.info("loaded model %s (%s) in %.2fs", model_id, entry.family, seconds)
        if self.on_load is not None:
            self.on_load(seconds)
        return LoadedModel(model_id, entry.family, pipe, entry, seconds, model_bytes(pipe))

    def _read(self, model_id: str, entry: ModelEntry, cls: type, extra: dict[str, Any]) -> Any:
        if entry.path is not None or (entry.repo is not None and entry.filename is None):
            source = str(entry.path) if entry.path is not None else entry.repo
            return cls.from_pretrained(source, revision=entry.revision, dtype=self.dtype, local_files_only=True,
                                       **extra)
        path = single_file_path(model_id, entry, self.data_dir)
        if not path.is_file():
            raise FileNotFoundError(path)
        return cls.from_single_file(str(path), config=str(entry.config), dtype=self.dtype, local_files_only=True,
                                    **extra)
