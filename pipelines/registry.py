"""ModelRegistry: model ids from models.yaml -> loaded diffusers img2img pipelines, kept in a small LRU.

Nothing here downloads: every load passes `local_files_only=True`, so a model that `sdgate pull` has not
fetched yet fails fast with ModelNotAvailable instead of stalling a request on the network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import LocalEntryNotFoundError

from pipelines.config import ModelEntry, RegistryConfig

log = logging.getLogger(__name__)

PIPELINE_CLASSES = {"sd15": StableDiffusionImg2ImgPipeline, "sdxl": StableDiffusionXLImg2ImgPipeline}


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
    # LoRA adapter names loaded into this pipeline's UNet / text encoders, least recently used first.
    loras: OrderedDict[str, None] = field(default_factory=OrderedDict)


def resolve_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def downloads_dir(data_dir: Path) -> Path:
    """Where `sdgate pull` puts plain-URL downloads (Hugging Face files live in the HF cache)."""
    return data_dir / "downloads"


def _single_file_path(model_id: str, entry: ModelEntry, data_dir: Path) -> Path:
    if entry.file is not None:
        return entry.file
    if entry.repo is not None and entry.filename is not None:
        return Path(hf_hub_download(entry.repo, entry.filename, revision=entry.revision, local_files_only=True))
    assert entry.url is not None
    return downloads_dir(data_dir) / model_id / entry.url.rsplit("/", 1)[-1]


class ModelRegistry:
    """Owns every loaded base pipeline. Components: config (models.yaml), device, dtype, an LRU of `max_loaded`.

    `get()` is called from the GPU worker thread; the lock only guards the cache against a concurrent
    `loaded_ids()` from the event loop.
    """

    def __init__(
        self,
        config: RegistryConfig,
        data_dir: Path,
        device: str = "cpu",
        max_loaded: int = 1,
        on_load: Callable[[float], None] | None = None,
    ) -> None:
        self.on_load = on_load
        self.config = config
        self.data_dir = data_dir
        self.device = device
        # fp16 halves memory and doubles speed on GPUs; CPUs have no fast fp16 kernels.
        self.dtype = torch.float16 if device == "cuda" else torch.float32
        self.max_loaded = max(1, max_loaded)
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, model_id: str) -> ModelEntry:
        try:
            return self.config.models[model_id]
        except KeyError:
            raise ModelNotFound(f"Model not found: {model_id}") from None

    def loaded_ids(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def get(self, model_id: str) -> LoadedModel:
        """The loaded pipeline for model_id, loading it (and evicting the least recently used) if needed."""
        with self._lock:
            if model_id in self._cache:
                self._cache.move_to_end(model_id)
                return self._cache[model_id]
        loaded = self._load(model_id, self.entry(model_id))
        with self._lock:
            self._cache[model_id] = loaded
            while len(self._cache) > self.max_loaded:
                evicted, _ = self._cache.popitem(last=False)
                log.info("evicted model %s", evicted)
        return loaded

    def reload(self, model_id: str) -> LoadedModel:
        """Drop the loaded copy (if any) and load the model's files again."""
        self.entry(model_id)
        with self._lock:
            self._cache.pop(model_id, None)
        return self.get(model_id)

    def _load(self, model_id: str, entry: ModelEntry) -> LoadedModel:
        cls = PIPELINE_CLASSES[entry.family]
        started = time.perf_counter()
        extra = {"safety_checker": None, "requires_safety_checker": False} if entry.family == "sd15" else {}
        try:
            if entry.path is not None or (entry.repo is not None and entry.filename is None):
                source = str(entry.path) if entry.path is not None else entry.repo
                pipe = cls.from_pretrained(
                    source, revision=entry.revision, dtype=self.dtype, local_files_only=True, **extra
                )
            else:
                path = _single_file_path(model_id, entry, self.data_dir)
                if not path.is_file():
                    raise FileNotFoundError(path)
                pipe = cls.from_single_file(
                    str(path), config=str(entry.config), dtype=self.dtype, local_files_only=True, **extra
                )
        except (OSError, LocalEntryNotFoundError, ValueError) as exc:
            log.warning("model %s could not be loaded from local files: %s", model_id, exc)
            raise ModelNotAvailable(
                f"Model {model_id} is not available on this server yet; run `sdgate pull {model_id}`"
            ) from exc
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        seconds = time.perf_counter() - started
        log.info("loaded model %s (%s) in %.2fs", model_id, entry.family, seconds)
        if self.on_load is not None:
            self.on_load(seconds)
        return LoadedModel(model_id, entry.family, pipe, entry, seconds)
