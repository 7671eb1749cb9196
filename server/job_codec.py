"""A job's payload as it is stored: JSON params in the job row, input images as PNGs in job_inputs.

Everything needed to run the job again after a restart is persisted before the request is answered.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pipelines.adapters import AdapterSpec, IpAdapterRequest
from pipelines.postprocess.safety import ReplaceMode
from pipelines.spec import GenerationSpec


@dataclass(frozen=True)
class JobPayload:
    """What the worker needs for one job; persisted as JSON + input PNGs so a restart can run it again."""

    spec: GenerationSpec
    file_stem: str
    base64: bool
    temp: bool
    safety_checker: bool
    safety_checker_type: ReplaceMode


class InputsMissing(RuntimeError):
    pass


def _png(image: Image.Image) -> bytes:
    # PNG keeps the decoded pixels exactly, so a re-run reproduces the first run.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_inputs(payload: JobPayload) -> dict[str, bytes]:
    """The job's input images, stored with the job row."""
    inputs = {"init": _png(payload.spec.init_image)}
    if payload.spec.adapters.ip_adapter is not None:
        inputs["ip"] = _png(payload.spec.adapters.ip_adapter.image)
    return inputs


def payload_to_json(payload: JobPayload) -> dict[str, Any]:
    spec = payload.spec
    adapters = spec.adapters
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in ("init_image", "adapters")}
    ip = adapters.ip_adapter
    fields["adapters"] = {
        "loras": [list(pair) for pair in adapters.loras],
        "vae": adapters.vae,
        "embeddings": list(adapters.embeddings),
        "ip_adapter": {"adapter_id": ip.adapter_id, "scale": ip.scale} if ip else None,
    }
    return {
        "spec": fields,
        "file_stem": payload.file_stem,
        "base64": payload.base64,
        "temp": payload.temp,
        "safety_checker": payload.safety_checker,
        "safety_checker_type": payload.safety_checker_type,
    }


def _open(inputs: dict[str, bytes], name: str) -> Image.Image:
    if name not in inputs:
        raise InputsMissing(f"input image {name} is missing")
    with Image.open(io.BytesIO(inputs[name])) as image:
        return image.convert("RGB")


def payload_from_json(params: dict[str, Any], inputs: dict[str, bytes]) -> JobPayload:
    stem = params["file_stem"]
    fields = dict(params["spec"])
    stored = fields.pop("adapters")
    ip = stored["ip_adapter"]
    adapters = AdapterSpec(
        loras=tuple((lora_id, float(weight)) for lora_id, weight in stored["loras"]),
        vae=stored["vae"],
        embeddings=tuple(stored["embeddings"]),
        ip_adapter=IpAdapterRequest(ip["adapter_id"], _open(inputs, "ip"), ip["scale"]) if ip else None,
    )
    spec = GenerationSpec(**fields, init_image=_open(inputs, "init"), adapters=adapters)
    return JobPayload(spec, stem, params["base64"], params["temp"], params["safety_checker"],
                      params["safety_checker_type"])
