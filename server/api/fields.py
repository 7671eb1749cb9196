"""The fields every hosted diffusion endpoint shares, with the hosted names, limits and error wording.

Hosted field names live in `server/api/` only: each endpoint's request model subclasses
`GenerationRequest` with the fields its task adds, and converts itself into a task spec (submission.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pipelines.schedulers import DEFAULT_SCHEDULER, SCHEDULER_NAMES, check_algorithm_type, scheduler_class_name
from server.api.coerce import in_range, to_bool, to_int, to_number, to_optional_str
from server.api.errors import ApiError, describe_validation_error

IP_ADAPTER_IDS = (
    "ip-adapter_sdxl",
    "ip-adapter_sd15",
    "ip-adapter-plus-face_sd15",
    "ip-adapter-plus_sdxl_vit-h",
    "ip-adapter-plus-face_sdxl_vit-h",
)
SAFETY_CHECKER_TYPES = ("blur", "sensitive_content_text", "pixelate", "black")
# Hosted options sdgate accepts and does not implement; a truthy value is reported in meta.ignored.
NO_EFFECT_FIELDS = ("multi_lingual", "panorama", "self_attention", "highres_fix", "upscale", "watermark", "free_u")
_OFF = {"", "no", "false", "0", "none", "null", "n", "off"}
M = TypeVar("M", bound=BaseModel)


def ranged(cls: type[BaseModel], ranges: dict[str, tuple[float, float]], value: Any, info: ValidationInfo,
           integer: bool) -> Any:
    """A number field: null = default, strings or numbers accepted, the range worded like the hosted API."""
    name = info.field_name
    assert name is not None
    if value is None:
        return cls.model_fields[name].default
    low, high = ranges[name]
    if integer:
        return int(in_range(name, to_int(name, value), low, high))
    return in_range(name, to_number(name, value), low, high)


def safety_mode(value: Any, default: str) -> str:
    """safety_checker_type: null or "" = the endpoint's default; otherwise one of the hosted modes."""
    if value is None or value == "":
        return default
    if value not in SAFETY_CHECKER_TYPES:
        raise ValueError(f"safety_checker_type must be one of: {', '.join(SAFETY_CHECKER_TYPES)}")
    return value


def flag(cls: type[BaseModel], value: Any, info: ValidationInfo) -> bool:
    name = info.field_name
    assert name is not None
    if value is None:
        return cls.model_fields[name].default
    return to_bool(name, value)


class GenerationRequest(BaseModel):
    """Shared body of the diffusion endpoints. Numbers may be JSON numbers or strings; flags "yes"/"no" or booleans."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    INT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "samples": (1, 4),
        "num_inference_steps": (1, 50),
        "clip_skip": (1, 8),
    }
    FLOAT_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "guidance_scale": (1, 20),
        "ip_adapter_scale": (0, 1),
    }
    # meta echoes these hosted flags as "no"; each endpoint lists the ones its hosted meta carries
    META_NO_EFFECT: ClassVar[tuple[str, ...]] = ()

    key: str | None = Field(default=None, description="Your API key (or send Authorization: Bearer <key>).")
    model_id: str | None = Field(
        default=None, description="Model id from models.yaml; else `model`; else the default model."
    )
    model: str | None = Field(default=None, description="Alternative name for model_id (sent by some SDKs).")
    prompt: str = Field(default="", description="What the image should show.")
    negative_prompt: str | None = Field(default=None, description="What the image should not show.")
    samples: int = Field(default=1, description="Images to generate, 1..4; image i uses seed + i.")
    num_inference_steps: int = Field(
        default=31, validation_alias=AliasChoices("num_inference_steps", "steps"),
        description="Denoising steps, 1..50 (alias: steps).",
    )
    guidance_scale: float = Field(default=7.5, description="Classifier-free guidance scale, 1..20.")
    seed: int | None = Field(default=None, description="0..4294967295; null picks a random seed, echoed in meta.")
    scheduler: str = Field(default=DEFAULT_SCHEDULER, description="One of the 18 hosted scheduler names.")
    use_karras_sigmas: bool = Field(default=True, description="Karras sigma spacing where the scheduler supports it.")
    algorithm_type: str | None = Field(default=None, description='"none" or "dpmsolver+++" (DPMSolverMultistep).')
    safety_checker: bool = Field(default=True, description="NSFW check on outputs.")
    safety_checker_type: Literal["blur", "sensitive_content_text", "pixelate", "black"] = Field(
        default="sensitive_content_text", description="How flagged images are replaced."
    )
    enhance_prompt: bool = Field(default=True, description="Append the hosted API's quality suffix to the prompt.")
    enhance_style: str | None = Field(default=None, description="Style preset name.")
    tomesd: bool = Field(default=True, description="Token merging for speed.")
    clip_skip: int = Field(default=1, description="CLIP layers to skip, 1..8 (1 = none).")
    vae: str | None = Field(default=None, description="VAE id from models.yaml.")
    lora_model: str | None = Field(
        default=None, validation_alias=AliasChoices("lora_model", "lora"), description="Comma-separated LoRA ids."
    )
    lora_strength: list[float] | None = Field(default=None, description="0.1..1, one value or one per LoRA.")
    embeddings_model: str | None = Field(
        default=None,
        validation_alias=AliasChoices("embeddings_model", "embeddings"),
        description="Textual-inversion embedding id.",
    )
    ip_adapter_id: str | None = Field(default=None, description="One of the five hosted IP-Adapter ids.")
    ip_adapter_image: str | None = Field(default=None, description="Reference image for the IP-Adapter.")
    ip_adapter_scale: float = Field(default=0.6, description="IP-Adapter strength, 0..1.")
    base64: bool = Field(default=False, description="Accept base64 input and answer with links to .base64 files.")
    temp: bool = Field(default=False, description="Store outputs under /temp/, deleted after 24 hours.")
    webhook: str | None = Field(default=None, description="URL that receives a POST when the job ends.")
    track_id: str | int | None = Field(default=None, description="Echoed in the webhook body.")
    instant_response: bool = Field(default=False, description="Answer processing at once; fetch the result later.")
    _no_effect: dict[str, str] = PrivateAttr(default_factory=dict)

    def ignored_options(self) -> list[str]:
        """`field:value` for each no-effect option the client turned on, so it can see it did nothing."""
        return [f"{name}:{value}" for name, value in self._no_effect.items()]

    @classmethod
    def model_validate_fields(cls, fields: dict[str, Any], context: dict[str, Any]) -> GenerationRequest:
        """Validate a request body; no-effect options are collected beside the typed fields."""
        on = {}
        for name in NO_EFFECT_FIELDS:
            value = fields.get(name)
            if value is None or value is False or value == 0 or (isinstance(value, str) and value.strip().lower() in _OFF):
                continue
            on[name] = "yes" if value is True else str(value)
        request = cls.model_validate(fields, context=context)
        request._no_effect = on
        return request

    @field_validator("samples", "num_inference_steps", "clip_skip", mode="before")
    @classmethod
    def check_int_range(cls, value: Any, info: ValidationInfo) -> int:
        return ranged(cls, cls.INT_RANGES, value, info, integer=True)

    @field_validator("guidance_scale", "ip_adapter_scale", mode="before")
    @classmethod
    def check_float_range(cls, value: Any, info: ValidationInfo) -> float:
        return ranged(cls, cls.FLOAT_RANGES, value, info, integer=False)

    @field_validator(
        "use_karras_sigmas", "safety_checker", "enhance_prompt", "tomesd", "base64", "temp", "instant_response",
        mode="before",
    )
    @classmethod
    def check_flag(cls, value: Any, info: ValidationInfo) -> bool:
        return flag(cls, value, info)

    @field_validator("seed", mode="before")
    @classmethod
    def check_seed(cls, value: Any) -> int | None:
        if value is None or value == "":
            return None
        return int(in_range("seed", to_int("seed", value), 0, 2**32 - 1))

    @field_validator("prompt", mode="before")
    @classmethod
    def check_prompt(cls, value: Any) -> str:
        return to_optional_str("prompt", value) or ""

    @field_validator(
        "key", "model_id", "model", "negative_prompt", "enhance_style", "vae", "lora_model", "embeddings_model",
        "ip_adapter_image", "webhook", mode="before",
    )
    @classmethod
    def check_optional_text(cls, value: Any, info: ValidationInfo) -> str | None:
        assert info.field_name is not None
        return to_optional_str(info.field_name, value)

    @field_validator("scheduler", mode="before")
    @classmethod
    def check_scheduler(cls, value: Any) -> str:
        if value is None or value == "":
            return DEFAULT_SCHEDULER
        if not isinstance(value, str):
            raise ValueError(f"scheduler must be one of: {', '.join(SCHEDULER_NAMES)}")
        scheduler_class_name(value)  # raises with the list of valid names
        return value

    @field_validator("algorithm_type", mode="before")
    @classmethod
    def check_algorithm_type(cls, value: Any) -> str | None:
        text = to_optional_str("algorithm_type", value)
        check_algorithm_type(text)  # raises with the accepted values
        return None if text in (None, "", "none", "no") else text

    @field_validator("safety_checker_type", mode="before")
    @classmethod
    def check_safety_checker_type(cls, value: Any) -> str:
        return safety_mode(value, "sensitive_content_text")

    @field_validator("ip_adapter_id", mode="before")
    @classmethod
    def check_ip_adapter_id(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if value not in IP_ADAPTER_IDS:
            raise ValueError(f"ip_adapter_id must be one of: {', '.join(IP_ADAPTER_IDS)}")
        return value

    @field_validator("lora_strength", mode="before")
    @classmethod
    def check_lora_strength(cls, value: Any) -> list[float] | None:
        if value is None or value == "":
            return None
        parts = value.split(",") if isinstance(value, str) else [value]
        return [in_range("lora_strength", to_number("lora_strength", p), 0.1, 1) for p in parts]

    @field_validator("track_id", mode="before")
    @classmethod
    def check_track_id(cls, value: Any) -> str | int | None:
        if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
            return value
        raise ValueError("track_id must be a string or a number")


def _invalid_unicode(value: Any, name: str) -> str | None:
    """The first field holding text that cannot be UTF-8 (a lone surrogate, which JSON's \\ud800 can carry)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return name
    elif isinstance(value, dict):
        return next((bad for key, item in value.items() if (bad := _invalid_unicode(item, str(key)))), None)
    elif isinstance(value, list):
        return next((bad for item in value if (bad := _invalid_unicode(item, name))), None)
    return None


def check_unicode(fields: dict[str, Any]) -> None:
    """Text that could not be tokenised, logged or written back must not get past the door."""
    bad = _invalid_unicode(fields, "request")
    if bad is not None:
        raise ApiError(f"{bad} is not valid Unicode text (it holds a lone surrogate)")


def parse_fields(model: type[M], fields: dict[str, Any], context: dict[str, Any] | None = None) -> M:
    """A request model from a body's fields; the first problem becomes the client's error message."""
    check_unicode(fields)
    try:
        if issubclass(model, GenerationRequest):
            return model.model_validate_fields(fields, context or {})  # type: ignore[return-value]
        return model.model_validate(fields, context=context)
    except ValidationError as exc:
        raise ApiError(describe_validation_error(list(exc.errors()))) from None


def presented_key(fields: dict[str, Any]) -> str | None:
    """The key as the body (or query string) carries it; other places are the HTTP layer's to look at."""
    key = fields.get("key")
    if not isinstance(key, str) or not key:
        return None
    check_unicode({"key": key})
    return key


class KeyOnlyRequest(BaseModel):
    """Body of the routes that take nothing but the key (system_load, model_list)."""

    model_config = ConfigDict(extra="ignore")

    key: str | None = Field(default=None, description="Your API key.")

    @field_validator("key", mode="before")
    @classmethod
    def check_key(cls, value: Any) -> str | None:
        return to_optional_str("key", value)


class FetchRequest(KeyOnlyRequest):
    """Body of the fetch routes: the key, and the job id as request_id where the path does not carry it."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"key": "your-api-key", "request_id": 1}]})

    request_id: int | None = Field(default=None, description="Job id from the generation answer.")

    @field_validator("request_id", mode="before")
    @classmethod
    def check_request_id(cls, value: Any) -> int | None:
        if value is None or value == "":
            return None
        return to_int("request_id", value)


class ReloadRequest(KeyOnlyRequest):
    """Body of model_reload: the model to load or read again."""

    model_id: str = Field(default="", description="Model id from models.yaml.")

    @field_validator("model_id", mode="before")
    @classmethod
    def check_model_id(cls, value: Any) -> str:
        return to_optional_str("model_id", value) or ""
