"""Translate the request's adapter fields (lora_model, lora_strength, vae, embeddings_model, ip_adapter_*)
into a pipelines AdapterSpec, with the hosted rules: unregistered ids are skipped into meta.ignored,
a registered id of the wrong family is an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pipelines.adapters import AdapterSpec, IpAdapterRequest
from pipelines.config import ModelEntry, RegistryConfig
from pipelines.images import ImageError, decode_image
from server.api.errors import ApiError
from server.api.fields import GenerationRequest
from server.api.images import load_image_bytes
from server.io.url_guard import UrlGuard
from server.ops.settings import Settings


@dataclass
class ResolvedAdapters:
    spec: AdapterSpec
    ignored: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, object]:
        """What meta reports as used."""
        weights = [w for _, w in self.spec.loras]
        ip = self.spec.ip_adapter
        used: dict[str, object] = {"ip_adapter_scale": ip.scale} if ip else {}
        return used | {
            "lora": ",".join(i for i, _ in self.spec.loras) or None,
            "lora_strength": 1 if not weights else weights[0] if len(weights) == 1 else ",".join(f"{w:g}" for w in weights),
            "vae": self.spec.vae,
            "embeddings": ",".join(self.spec.embeddings) or None,
            "ip_adapter_id": ip.adapter_id if ip else None,
        }


def _ids(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _check_family(field_name: str, adapter_id: str, family: str, model_id: str, model: ModelEntry) -> None:
    if family != model.family:
        raise ApiError(f"{field_name} {adapter_id} is for {family} models; model {model_id} is {model.family}")


def _loras(body: GenerationRequest, config: RegistryConfig, model_id: str, model: ModelEntry,
           ignored: list[str]) -> tuple[tuple[str, float], ...]:
    requested = _ids(body.lora_model)
    strengths = body.lora_strength or [1.0]
    if len(strengths) not in (1, len(requested)) and requested:
        raise ApiError(f"lora_strength has {len(strengths)} values for {len(requested)} lora_model ids; "
                       "give one value for all or one per LoRA")
    pairs = []
    for index, lora_id in enumerate(requested):
        if lora_id not in config.loras:
            ignored.append(f"lora_model:{lora_id}")
            continue
        _check_family("lora_model", lora_id, config.loras[lora_id].family, model_id, model)
        pairs.append((lora_id, strengths[index] if len(strengths) > 1 else strengths[0]))
    if len({lora_id for lora_id, _ in pairs}) != len(pairs):
        raise ApiError("lora_model lists the same LoRA twice")
    return tuple(pairs)


async def _ip_adapter(body: GenerationRequest, config: RegistryConfig, model_id: str, model: ModelEntry,
                      settings: Settings, guard: UrlGuard) -> IpAdapterRequest | None:
    if body.ip_adapter_id is None:
        return None
    if body.ip_adapter_id not in config.ip_adapters:
        raise ApiError(f"ip_adapter_id {body.ip_adapter_id} is not configured on this server (models.yaml ip_adapters)")
    _check_family("ip_adapter_id", body.ip_adapter_id, config.ip_adapters[body.ip_adapter_id].family, model_id, model)
    if not body.ip_adapter_image:
        raise ApiError("ip_adapter_image is required with ip_adapter_id")
    data = await load_image_bytes(body.ip_adapter_image, base64_mode=body.base64, guard=guard, field="ip_adapter_image")
    try:
        image = await asyncio.to_thread(decode_image, data, what="ip_adapter_image", max_pixels=settings.max_image_pixels)
    except ImageError as exc:
        raise ApiError(str(exc)) from None
    return IpAdapterRequest(body.ip_adapter_id, image, body.ip_adapter_scale)


async def resolve_adapters(body: GenerationRequest, config: RegistryConfig, model_id: str, settings: Settings,
                           guard: UrlGuard) -> ResolvedAdapters:
    model = config.models[model_id]
    ignored: list[str] = []
    loras = _loras(body, config, model_id, model, ignored)
    vae = None
    for vae_id in _ids(body.vae)[:1] or ([model.vae] if model.vae else []):
        if vae_id not in config.vaes:
            ignored.append(f"vae:{vae_id}")
            continue
        _check_family("vae", vae_id, config.vaes[vae_id].family, model_id, model)
        vae = vae_id
    embeddings = []
    for embedding_id in _ids(body.embeddings_model):
        if embedding_id not in config.embeddings:
            ignored.append(f"embeddings_model:{embedding_id}")
            continue
        _check_family("embeddings_model", embedding_id, config.embeddings[embedding_id].family, model_id, model)
        embeddings.append(embedding_id)
    ip_adapter = await _ip_adapter(body, config, model_id, model, settings, guard)
    spec = AdapterSpec(loras=loras, vae=vae, embeddings=tuple(dict.fromkeys(embeddings)), ip_adapter=ip_adapter)
    return ResolvedAdapters(spec, ignored)
