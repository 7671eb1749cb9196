"""Per-request adapters: LoRAs, VAE override, textual-inversion embeddings, IP-Adapters.

Weights are read from disk once and kept in memory (bounded); what a job activates is undone when the
job ends, so the next job sees the base model. Called on the GPU worker thread only.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPVisionModelWithProjection

from pipelines.config import EmbeddingEntry, IpAdapterEntry, RegistryConfig, SourceEntry, VaeEntry
from pipelines.registry import LOAD_LOCK, LoadedModel, ModelNotAvailable
from pipelines.sources import single_file_path

log = logging.getLogger(__name__)


class AdapterError(ValueError):
    """A request asks for an adapter combination that cannot run; the message names it."""


@dataclass(frozen=True)
class IpAdapterRequest:
    adapter_id: str
    image: Image.Image
    scale: float


@dataclass(frozen=True)
class AdapterSpec:
    """Adapters for one job: LoRA (id, weight) pairs in request order, and optional overrides."""

    loras: tuple[tuple[str, float], ...] = ()
    vae: str | None = None
    embeddings: tuple[str, ...] = ()
    ip_adapter: IpAdapterRequest | None = None


def local_file(entry_id: str, entry: SourceEntry, data_dir: Path) -> Path:
    """Where a single-file adapter lives on this machine; ModelNotAvailable if `sdgate pull` has not run."""
    missing = ModelNotAvailable(f"{entry_id} is not available on this server yet; run `sdgate pull {entry_id}`")
    try:
        path = single_file_path(entry_id, entry, data_dir)
    except (OSError, LocalEntryNotFoundError) as exc:
        raise missing from exc
    except ValueError as exc:
        raise AdapterError(str(exc)) from None
    if not path.is_file():
        raise missing
    return path


class AdapterStore:
    """In-memory adapter weights, each read from disk once. Components: VAEs (LRU), embeddings, IP-Adapters."""

    def __init__(self, config: RegistryConfig, data_dir: Path, device: str, dtype: torch.dtype, max_vaes: int = 2):
        self.config = config
        self.data_dir = data_dir
        self.device = device
        self.dtype = dtype
        self.max_vaes = max_vaes
        self._vaes: OrderedDict[str, AutoencoderKL] = OrderedDict()
        self._embeddings: dict[str, dict[str, torch.Tensor]] = {}
        self._ip_adapters: dict[str, tuple[dict[str, dict[str, torch.Tensor]], CLIPVisionModelWithProjection]] = {}

    def lora_path(self, lora_id: str) -> Path:
        return local_file(lora_id, self.config.loras[lora_id], self.data_dir)

    def vae(self, vae_id: str, model: LoadedModel) -> AutoencoderKL:
        if vae_id not in self._vaes:
            self._vaes[vae_id] = self._load_vae(vae_id, self.config.vaes[vae_id])
            while len(self._vaes) > self.max_vaes:
                self._vaes.popitem(last=False)
        self._vaes.move_to_end(vae_id)
        vae = self._vaes[vae_id]
        # A mismatched VAE is accepted by diffusers and only fails mid-run: check up front.
        # The UNet's output is the latent (its input may carry more: mask and masked image on inpainting models).
        if vae.config.latent_channels != model.pipe.unet.config.out_channels:
            raise AdapterError(
                f"vae {vae_id} has {vae.config.latent_channels} latent channels; "
                f"model {model.model_id} needs {model.pipe.unet.config.out_channels}"
            )
        return vae

    def _load_vae(self, vae_id: str, entry: VaeEntry) -> AutoencoderKL:
        with LOAD_LOCK:
            return self._read_vae(vae_id, entry)

    def _read_vae(self, vae_id: str, entry: VaeEntry) -> AutoencoderKL:
        try:
            if entry.path is not None:
                vae = AutoencoderKL.from_pretrained(str(entry.path), local_files_only=True)
            elif entry.repo is not None and entry.filename is None:
                vae = AutoencoderKL.from_pretrained(entry.repo, revision=entry.revision, local_files_only=True)
            else:
                vae = AutoencoderKL.from_single_file(str(local_file(vae_id, entry, self.data_dir)),
                                                     config=str(entry.config), subfolder="vae", local_files_only=True)
        except OSError as exc:
            raise ModelNotAvailable(f"{vae_id} is not available on this server yet; run `sdgate pull {vae_id}`") from exc
        return vae.to(self.device, self.dtype)

    def embedding(self, embedding_id: str) -> dict[str, torch.Tensor]:
        if embedding_id not in self._embeddings:
            path = local_file(embedding_id, self.config.embeddings[embedding_id], self.data_dir)
            if path.suffix == ".safetensors":
                self._embeddings[embedding_id] = load_file(str(path))
            else:
                # A1111 .pt embeddings are pickles of plain tensors; weights_only refuses anything else.
                self._embeddings[embedding_id] = torch.load(str(path), map_location="cpu", weights_only=True)
        return self._embeddings[embedding_id]

    def ip_adapter(self, adapter_id: str) -> tuple[dict[str, dict[str, torch.Tensor]], CLIPVisionModelWithProjection]:
        if adapter_id not in self._ip_adapters:
            with LOAD_LOCK:
                self._ip_adapters[adapter_id] = self._load_ip_adapter(adapter_id, self.config.ip_adapters[adapter_id])
        return self._ip_adapters[adapter_id]

    def _load_ip_adapter(self, adapter_id: str, entry: IpAdapterEntry) -> tuple[dict, CLIPVisionModelWithProjection]:
        missing = ModelNotAvailable(f"{adapter_id} is not available on this server yet; run `sdgate pull {adapter_id}`")
        try:
            if entry.path is not None:
                root = entry.path
            elif entry.repo is not None:
                patterns = [f"{entry.subfolder}/{entry.weight}".lstrip("/"), f"{entry.image_encoder}/*"]
                root = Path(snapshot_download(entry.repo, revision=entry.revision, allow_patterns=patterns,
                                              local_files_only=True))
            else:
                raise AdapterError(f"{adapter_id}: IP-Adapters need a path or repo source")
            flat = load_file(str(root / entry.subfolder / entry.weight))
            encoder = CLIPVisionModelWithProjection.from_pretrained(str(root / entry.image_encoder),
                                                                     local_files_only=True)
        except OSError as exc:
            raise missing from exc
        state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            group, _, rest = key.partition(".")
            state[group][rest] = value
        return state, encoder.to(self.device, self.dtype)


def activate_loras(model: LoadedModel, store: AdapterStore, loras: tuple[tuple[str, float], ...], keep: int) -> None:
    """Make exactly `loras` active on the model's shared UNet / text encoders; loading any not yet in memory."""
    pipe = model.pipe
    for lora_id, _ in loras:
        if lora_id not in model.loras:
            with LOAD_LOCK:
                pipe.load_lora_weights(str(store.lora_path(lora_id)), adapter_name=lora_id)
            model.loras[lora_id] = None
        model.loras.move_to_end(lora_id)
    # Evict least recently used adapters beyond the budget, never one this job needs.
    wanted = {lora_id for lora_id, _ in loras}
    for lora_id in [name for name in model.loras if name not in wanted][: max(0, len(model.loras) - keep)]:
        pipe.delete_adapters(lora_id)
        del model.loras[lora_id]
    if not loras:
        if model.loras:
            pipe.disable_lora()
        return
    pipe.enable_lora()
    # Set on every job: loading activates only the last adapter, and earlier jobs may have left others on.
    pipe.set_adapters([lora_id for lora_id, _ in loras], adapter_weights=[weight for _, weight in loras])


def _load_embedding(pipe: Any, state: dict[str, Any], token: str | None, is_sdxl: bool) -> None:
    if is_sdxl:
        if "clip_l" not in state or "clip_g" not in state or token is None:
            raise AdapterError("SDXL embeddings need clip_l and clip_g tensors and a token in models.yaml")
        pipe.load_textual_inversion(state["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(state["clip_g"], token=token, text_encoder=pipe.text_encoder_2,
                                    tokenizer=pipe.tokenizer_2)
        return
    vectors: Any = state
    if "string_to_param" in state:  # A1111 .pt
        vectors, token = state["string_to_param"]["*"], token or state.get("name")
    elif "emb_params" in state:  # A1111 .safetensors
        vectors = state["emb_params"]
    if isinstance(vectors, torch.Tensor) and token is None:
        raise AdapterError("this embedding file names no token: set `token:` in models.yaml")
    pipe.load_textual_inversion(vectors, token=token)


@contextmanager
def attached(pipe: Any, model: LoadedModel, store: AdapterStore, spec: AdapterSpec) -> Iterator[dict[str, Any]]:
    """Embeddings and IP-Adapter for this job only; yields extra pipeline call arguments."""
    is_sdxl = model.family == "sdxl"
    extra: dict[str, Any] = {}
    try:
        for embedding_id in spec.embeddings:
            entry: EmbeddingEntry = store.config.embeddings[embedding_id]
            _load_embedding(pipe, store.embedding(embedding_id), entry.token, is_sdxl)
        if spec.ip_adapter is not None:
            state, encoder = store.ip_adapter(spec.ip_adapter.adapter_id)
            pipe.register_modules(image_encoder=encoder)
            entry_ip = store.config.ip_adapters[spec.ip_adapter.adapter_id]
            with LOAD_LOCK:
                pipe.load_ip_adapter(state, subfolder="", weight_name=entry_ip.weight, image_encoder_folder=None)
            pipe.set_ip_adapter_scale(spec.ip_adapter.scale)
            extra["ip_adapter_image"] = spec.ip_adapter.image
        yield extra
    finally:
        if spec.ip_adapter is not None and getattr(pipe.unet, "encoder_hid_proj", None) is not None:
            pipe.unload_ip_adapter()
        if spec.embeddings:
            # Restores tokenizer length and embedding rows exactly.
            pipe.unload_textual_inversion()
            if is_sdxl:
                pipe.unload_textual_inversion(tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2)
