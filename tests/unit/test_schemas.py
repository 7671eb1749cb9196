"""The request model accepts every value form real clients send and words errors like the hosted API."""

import pytest
from pydantic import ValidationError

from server.api.errors import describe_validation_error
from server.api.fields import FetchRequest
from server.api.img2img import Img2ImgRequest

BASE = {"init_image": "https://example.com/a.png"}


def parse(**fields: object) -> Img2ImgRequest:
    return Img2ImgRequest.model_validate({**BASE, **fields})


def error_of(**fields: object) -> str:
    with pytest.raises(ValidationError) as info:
        parse(**fields)
    return describe_validation_error(list(info.value.errors()))


def test_defaults_follow_the_contract() -> None:
    req = parse()
    assert (req.samples, req.num_inference_steps, req.strength, req.guidance_scale) == (1, 31, 0.7, 7.5)
    assert req.scheduler == "UniPCMultistepScheduler"
    assert req.seed is None and req.enhance_prompt and req.safety_checker and not req.base64 and not req.temp
    assert (req.clip_skip, req.ip_adapter_scale, req.safety_checker_type) == (1, 0.6, "sensitive_content_text")


@pytest.mark.parametrize("value, expected", [("31", 31), (31, 31), ("31.0", 31), (31.0, 31), (" 7 ", 7)])
def test_integers_as_numbers_or_strings(value: object, expected: int) -> None:
    assert parse(num_inference_steps=value).num_inference_steps == expected


@pytest.mark.parametrize("value", ["7.5", 7.5, "7.50"])
def test_floats_as_numbers_or_strings(value: object) -> None:
    assert parse(guidance_scale=value).guidance_scale == 7.5


@pytest.mark.parametrize(
    "value, expected",
    [("yes", True), ("no", False), ("YES", True), ("true", True), ("false", False), ("1", True), ("0", False),
     (1, True), (0, False), (True, True), (False, False)],
)
def test_flags_in_every_form(value: object, expected: bool) -> None:
    assert parse(base64=value).base64 is expected
    assert parse(tomesd=value).tomesd is expected


def test_null_means_default() -> None:
    req = parse(samples=None, seed=None, strength=None, enhance_prompt=None, scheduler=None, negative_prompt=None)
    assert (req.samples, req.seed, req.strength, req.enhance_prompt, req.scheduler) == (
        1, None, 0.7, True, "UniPCMultistepScheduler")


def test_unknown_fields_are_ignored_and_aliases_work() -> None:
    req = parse(panorama="no", self_attention="no", upscale="no", lora="x,y", embeddings="e", width="512")
    assert req.lora_model == "x,y" and req.embeddings_model == "e"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"samples": 5}, "samples must be between 1 and 4"),
        ({"samples": "0"}, "samples must be between 1 and 4"),
        ({"num_inference_steps": 51}, "num_inference_steps must be between 1 and 50"),
        ({"guidance_scale": 25}, "guidance_scale must be between 1 and 20"),
        ({"guidance_scale": "0.5"}, "guidance_scale must be between 1 and 20"),
        ({"strength": 1.5}, "strength must be between 0 and 1"),
        ({"clip_skip": 9}, "clip_skip must be between 1 and 8"),
        ({"ip_adapter_scale": -0.1}, "ip_adapter_scale must be between 0 and 1"),
        ({"seed": -1}, "seed must be between 0 and 4294967295"),
        ({"seed": 2**32}, "seed must be between 0 and 4294967295"),
        ({"lora_strength": "0.5,2"}, "lora_strength must be between 0.1 and 1"),
        ({"samples": "two"}, "samples must be a number"),
        ({"samples": 1.5}, "samples must be an integer"),
        ({"strength": "nan"}, "strength must be a number"),
        ({"strength": True}, "strength must be a number"),
        ({"strength": [0.5]}, "strength must be a number"),
        ({"base64": "maybe"}, 'base64 must be "yes" or "no"'),
        ({"prompt": 12}, "prompt must be a string"),
        ({"prompt": {"a": 1}}, "prompt must be a string"),
        ({"init_image": ""}, "init_image is required"),
        ({"init_image": 5}, "init_image must be a string (URL or base64)"),
        ({"safety_checker_type": "sparkles"}, "safety_checker_type must be one of"),
        ({"ip_adapter_id": "ip-adapter_sd99"}, "ip_adapter_id must be one of"),
        ({"track_id": [1]}, "track_id must be a string or a number"),
    ],
)
def test_range_and_type_errors_name_field_and_rule(fields: dict, message: str) -> None:
    assert error_of(**fields).startswith(message)


def test_unknown_scheduler_lists_valid_names() -> None:
    message = error_of(scheduler="FancyScheduler")
    assert message.startswith("Unknown scheduler: FancyScheduler") and "LCMScheduler" in message


def test_missing_init_image_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        Img2ImgRequest.model_validate({"prompt": "x"})
    assert describe_validation_error(list(info.value.errors())) == "init_image is required"


def test_fetch_request_id_as_string_or_number() -> None:
    assert FetchRequest.model_validate({"request_id": "42"}).request_id == 42
    assert FetchRequest.model_validate({"request_id": 42}).request_id == 42
