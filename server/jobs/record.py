"""A job as it is stored: a typed, versioned record in the job row's JSON, input images beside it by name.

Everything needed to run the job again after a restart (or on another server) is in the record and its
inputs, persisted before the request is answered. Records written by older versions are upgraded when
read, so their jobs stay fetchable and runnable after an upgrade.
"""

from __future__ import annotations

import dataclasses
import io
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from PIL import Image
from pydantic import BaseModel, ConfigDict

from pipelines.postprocess.safety import ReplaceMode
from pipelines.spec import TaskSpec
from pipelines.tasks import spec_type

SCHEMA_VERSION = 2


class InputsMissing(RuntimeError):
    pass


class OutputOptions(BaseModel):
    """How a job's images are stored and checked: file names, link kind, area, safety filter."""

    model_config = ConfigDict(frozen=True)

    file_stem: str
    images: int
    base64: bool = False
    temp: bool = False
    safety_checker: bool = False
    safety_checker_type: ReplaceMode = "sensitive_content_text"


@dataclass(frozen=True)
class JobPayload:
    """What a worker needs to run a job: the spec, and where and how its images go."""

    spec: TaskSpec
    output: OutputOptions


class JobRecord(BaseModel):
    """Task, the route the job came in by, its spec (images as references into `inputs`), output options, meta."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[2] = SCHEMA_VERSION
    task: str
    route: str
    spec: dict[str, Any]
    inputs: list[str]
    output: OutputOptions
    meta: dict[str, Any]
    # Higher runs first among queued jobs (the realtime endpoints); absent in older records: 0.
    priority: int = 0

    def payload(self, inputs: dict[str, bytes]) -> JobPayload:
        """The runnable job, its images read back from the stored inputs."""
        spec = _build(spec_type(self.task), _restore(self.spec, inputs))
        return JobPayload(spec, self.output)


def new_record(spec: TaskSpec, output: OutputOptions, route: str, meta: dict[str, Any],
               priority: int = 0) -> tuple[JobRecord, dict[str, bytes]]:
    """The record and the PNG bytes of its input images."""
    images: dict[str, bytes] = {}
    fields = _encode(spec, "", images)
    record = JobRecord(task=spec.task, route=route, spec=fields, inputs=sorted(images), output=output, meta=meta,
                       priority=priority)
    return record, images


def read_record(params: dict[str, Any], schema_version: int) -> JobRecord:
    """A stored record in today's form, whichever version wrote it."""
    if schema_version == 1:
        params = _from_v1(params)
    return JobRecord.model_validate(params)


def _png(image: Image.Image) -> bytes:
    # PNG keeps the decoded pixels exactly, so a re-run reproduces the first run.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _encode(value: Any, path: str, images: dict[str, bytes]) -> Any:
    if isinstance(value, Image.Image):
        images[path] = _png(value)
        return {"input": path}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name), f"{path}.{f.name}".lstrip("."), images)
                for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_encode(item, f"{path}.{i}", images) for i, item in enumerate(value)]
    return value


def _restore(value: Any, inputs: dict[str, bytes]) -> Any:
    """Image references -> images; JSON lists -> tuples (specs are frozen and hashed for batching)."""
    if isinstance(value, dict):
        if set(value) == {"input"}:
            name = value["input"]
            if name not in inputs:
                raise InputsMissing(f"input image {name} is missing")
            with Image.open(io.BytesIO(inputs[name])) as image:
                # Masks are stored as one channel and stay so; everything else is RGB.
                return image.convert("L" if image.mode == "L" else "RGB")
        return {key: _restore(item, inputs) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_restore(item, inputs) for item in value)
    return value


def _build(cls: type, fields: dict[str, Any]) -> Any:
    """A dataclass from restored fields, building nested dataclass fields (adapters, IP-Adapter) by their hints."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in fields:
            continue
        value = fields[f.name]
        nested = _dataclass_in(hints[f.name])
        values[f.name] = _build(nested, value) if nested is not None and isinstance(value, dict) else value
    return cls(**values)


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (Union, types.UnionType):
        return next((arg for arg in typing.get_args(hint) if dataclasses.is_dataclass(arg)), None)
    return None


def _from_v1(params: dict[str, Any]) -> dict[str, Any]:
    """v0.1 rows: img2img only; spec without its images (stored as inputs "init" and "ip"), options at the top."""
    spec = dict(params["spec"])
    spec["init_image"] = {"input": "init"}
    adapters = dict(spec["adapters"])
    inputs = ["init"]
    if adapters.get("ip_adapter"):
        adapters["ip_adapter"] = {**adapters["ip_adapter"], "image": {"input": "ip"}}
        inputs.append("ip")
    spec["adapters"] = adapters
    meta = params["meta"]
    output = {"file_stem": params["file_stem"], "images": meta["n_samples"], "base64": params["base64"],
              "temp": params["temp"], "safety_checker": params["safety_checker"],
              "safety_checker_type": params["safety_checker_type"]}
    return {"task": "img2img", "route": "/api/v6/images/img2img", "spec": spec, "inputs": inputs, "output": output,
            "meta": meta}
