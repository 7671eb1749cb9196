"""Job records: a spec survives the trip through the stored JSON and input images; old versions are read."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipelines.adapters import AdapterSpec, IpAdapterRequest
from pipelines.tasks.img2img import Img2ImgSpec
from pipelines.tasks.text2img import Text2ImgSpec
from server.jobs.record import SCHEMA_VERSION, InputsMissing, OutputOptions, new_record, read_record

OUTPUT = OutputOptions(file_stem="stem", images=2, base64=True, safety_checker=True, safety_checker_type="blur")


def _image(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_img2img_spec_with_adapters_round_trips() -> None:
    adapters = AdapterSpec(loras=(("a", 0.5), ("b", 1.0)), vae="v", embeddings=("e",),
                           ip_adapter=IpAdapterRequest("ip-adapter_sd15", _image((1, 2, 3), (8, 8)), 0.4))
    spec = Img2ImgSpec("m", "p", "n", 24, 16, init_image=_image((200, 10, 10)), strength=0.3, steps=7, seed=9,
                       samples=2, adapters=adapters)
    record, inputs = new_record(spec, OUTPUT, "/api/v3/img2img", {"seed": 9})
    assert sorted(inputs) == record.inputs == ["adapters.ip_adapter.image", "init_image"]
    stored = json.loads(json.dumps(record.model_dump(mode="json")))  # through the database's JSON column
    back = read_record(stored, SCHEMA_VERSION)
    assert (back.task, back.route, back.output, back.meta) == ("img2img", "/api/v3/img2img", OUTPUT, {"seed": 9})
    payload = back.payload(inputs)
    got = payload.spec
    assert isinstance(got, Img2ImgSpec)
    assert (got.strength, got.steps, got.seed, got.samples, got.width, got.height) == (0.3, 7, 9, 2, 24, 16)
    assert (got.adapters.loras, got.adapters.vae, got.adapters.embeddings) == ((("a", 0.5), ("b", 1.0)), "v", ("e",))
    assert got.adapters.ip_adapter is not None and got.adapters.ip_adapter.scale == 0.4
    assert np.array_equal(np.asarray(payload.spec.init_image), np.asarray(spec.init_image))
    assert payload.spec.adapters.ip_adapter is not None
    assert np.array_equal(np.asarray(payload.spec.adapters.ip_adapter.image), np.asarray(adapters.ip_adapter.image))


def test_text2img_spec_round_trips_without_inputs() -> None:
    spec = Text2ImgSpec("m", "p", "n", 64, 72, steps=3, seed=1)
    record, inputs = new_record(spec, OUTPUT, "/api/v6/images/text2img", {})
    assert inputs == {} and record.task == "text2img"
    assert read_record(record.model_dump(mode="json"), SCHEMA_VERSION).payload({}).spec == spec


def test_missing_inputs_are_reported() -> None:
    spec = Img2ImgSpec("m", "p", "n", 24, 16, init_image=_image((0, 0, 0)))
    record, _ = new_record(spec, OUTPUT, "/api/v6/images/img2img", {})
    with pytest.raises(InputsMissing):
        record.payload({})


def test_v01_params_are_read_as_img2img_records() -> None:
    v01 = {"spec": {"model_id": "m", "prompt": "p", "negative_prompt": "n", "width": 24, "height": 16,
                    "strength": 0.5, "steps": 4, "guidance_scale": 7.5, "seed": 3, "samples": 1,
                    "scheduler": "UniPCMultistepScheduler", "use_karras_sigmas": True, "algorithm_type": None,
                    "clip_skip": 1, "tomesd": True, "tomesd_ratio": 0.5,
                    "adapters": {"loras": [["a", 0.7]], "vae": None, "embeddings": [], "ip_adapter": None}},
           "file_stem": "s", "base64": False, "temp": True, "safety_checker": False,
           "safety_checker_type": "black", "meta": {"n_samples": 1, "seed": 3}}
    record = read_record(v01, 1)
    assert (record.task, record.inputs, record.output.images, record.output.temp) == ("img2img", ["init"], 1, True)
    spec = record.payload({"init": _png(_image((5, 5, 5)))}).spec
    assert isinstance(spec, Img2ImgSpec) and spec.strength == 0.5 and spec.adapters.loras == (("a", 0.7),)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
