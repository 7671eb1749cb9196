"""models.yaml, parsed into typed entries; a bad file stops start-up with the file and entry named.

Relative `path` / `file` / `config` values are resolved against the folder of the yaml file, so a
models.yaml can travel together with the artifacts it lists (as `sdgate make-tiny` writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.scheduler_names import scheduler_class_name

Family = Literal["sd15", "sdxl"]


class ConfigError(Exception):
    """models.yaml is missing, unreadable or has an invalid entry."""


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family: Family = Field(description="Base architecture: sd15 (SD1.x) or sdxl.")
    path: Path | None = Field(default=None, description="Local folder (diffusers layout).")
    file: Path | None = Field(default=None, description="Local single file (.safetensors).")
    repo: str | None = Field(default=None, description="Hugging Face repo id, resolved through the local HF cache.")
    filename: str | None = Field(default=None, description="File inside `repo`, for single-file sources.")
    revision: str | None = None
    url: str | None = Field(default=None, description="Plain https URL of a single file, fetched by `sdgate pull`.")
    sha256: str | None = Field(default=None, description="Checksum checked after a download.")

    @model_validator(mode="after")
    def check_exactly_one_source(self) -> SourceEntry:
        sources = [s for s in ("path", "file", "repo", "url") if getattr(self, s) is not None]
        if len(sources) != 1:
            raise ValueError(f"give exactly one of path, file, repo, url (got {sources or 'none'})")
        return self

    def resolve_paths(self, base: Path) -> None:
        for attr in ("path", "file"):
            value = getattr(self, attr)
            if value is not None and not value.is_absolute():
                setattr(self, attr, base / value)


class RealtimeDefaults(BaseModel):
    """What the realtime endpoints use when a request does not say: a distilled model wants few steps."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=4, ge=1, le=50)
    guidance_scale: float = Field(default=1.0, ge=0, le=20)
    scheduler: str | None = Field(default=None, description="A hosted scheduler name; none = the model's own.")

    @field_validator("scheduler")
    @classmethod
    def check_scheduler(cls, value: str | None) -> str | None:
        if value is not None:
            scheduler_class_name(value)  # raises with the list of valid names
        return value


class ModelEntry(SourceEntry):
    config: Path | None = Field(default=None, description="Local diffusers config folder for single-file checkpoints.")
    default: bool = Field(default=False, description="Model used when a request names no model_id (v3 API).")
    realtime: bool = Field(default=False, description="The model the realtime endpoints run (at most one).")
    realtime_defaults: RealtimeDefaults = Field(default_factory=RealtimeDefaults)
    inpainting: bool = Field(
        default=False, description="An inpainting checkpoint (9-channel UNet): it serves inpaint requests only."
    )
    instance_prompt: str | None = Field(default=None, description="Trigger words prepended to every prompt.")
    vae: str | None = Field(default=None, description="Id of a `vaes` entry used when a request names none.")
    name: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def check_single_file_has_config(self) -> ModelEntry:
        single = self.file is not None or self.url is not None or self.filename is not None
        if single and self.config is None:
            # Without a local config diffusers goes to the network even with local_files_only.
            raise ValueError("a single-file checkpoint needs `config:` (a local diffusers config folder)")
        return self

    def resolve_paths(self, base: Path) -> None:
        super().resolve_paths(base)
        if self.config is not None and not self.config.is_absolute():
            self.config = base / self.config


class LoraEntry(SourceEntry):
    pass


class VaeEntry(SourceEntry):
    config: Path | None = Field(default=None, description="Local diffusers config folder for a single-file VAE.")

    def resolve_paths(self, base: Path) -> None:
        super().resolve_paths(base)
        if self.config is not None and not self.config.is_absolute():
            self.config = base / self.config


class EmbeddingEntry(SourceEntry):
    token: str | None = Field(default=None, description="Prompt token; taken from the file when omitted.")


class IpAdapterEntry(SourceEntry):
    subfolder: str = ""
    weight: str = Field(description="Weight file name inside subfolder.")
    image_encoder: str = Field(description="Image encoder folder, relative to the adapter root.")


class RegistryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include: list[Path] = Field(
        default_factory=list, description="Other models.yaml files merged in; entries here win over theirs."
    )
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    loras: dict[str, LoraEntry] = Field(default_factory=dict)
    vaes: dict[str, VaeEntry] = Field(default_factory=dict)
    embeddings: dict[str, EmbeddingEntry] = Field(default_factory=dict)
    ip_adapters: dict[str, IpAdapterEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def check_one_default(self) -> RegistryConfig:
        for flag in ("default", "realtime"):
            marked = [k for k, m in self.models.items() if getattr(m, flag)]
            if len(marked) > 1:
                raise ValueError(f"only one model may be `{flag}: true` (got {marked})")
        return self

    def default_model_id(self) -> str | None:
        return next((k for k, m in self.models.items() if m.default), None)

    def realtime_model_id(self) -> str | None:
        """The realtime model: the one flagged `realtime: true`, else the default model."""
        return next((k for k, m in self.models.items() if m.realtime), None) or self.default_model_id()


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


SECTIONS = ("models", "loras", "vaes", "embeddings", "ip_adapters")


def load_config(path: Path, _seen: frozenset[Path] = frozenset()) -> RegistryConfig:
    """Read and validate models.yaml (and its includes); relative paths resolve against each file's folder."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: cannot read models file ({exc.strerror}; give its path with --config or SDGATE_CONFIG)"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read models file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections models, loras, vaes, embeddings, ip_adapters")
    try:
        config = RegistryConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid entries\n{_describe(exc)}") from exc
    base = path.resolve().parent
    for name in SECTIONS:
        for entry in getattr(config, name).values():
            entry.resolve_paths(base)
    for included in config.include:
        included = included if included.is_absolute() else base / included
        if included.resolve() in _seen | {path.resolve()}:
            raise ConfigError(f"{path}: include loop through {included}")
        if not included.is_file():
            raise ConfigError(f"{path}: included file {included} does not exist (tiny models: sdgate make-tiny --out DIR)")
        _merge(config, load_config(included, _seen | {path.resolve()}), path)
    if not _seen:  # references are checked once every include is merged
        for model_id, model in config.models.items():
            if model.vae is not None and model.vae not in config.vaes:
                raise ConfigError(f"{path}: models.{model_id}.vae: {model.vae} is not in `vaes`")
    return config


def _merge(into: RegistryConfig, other: RegistryConfig, path: Path) -> None:
    if into.default_model_id() and other.default_model_id():
        raise ConfigError(f"{path}: only one model may be `default: true` across includes")
    if any(m.realtime for m in into.models.values()):
        # The including file's realtime model wins (as its entries do), e.g. a real one over the tiny test one.
        for entry_id, entry in other.models.items():
            if entry.realtime:
                other.models[entry_id] = entry.model_copy(update={"realtime": False})
    for name in SECTIONS:
        mine, theirs = getattr(into, name), getattr(other, name)
        # The including file wins: it can point a hosted id (e.g. ip-adapter_sd15) at real weights.
        for entry_id, entry in theirs.items():
            mine.setdefault(entry_id, entry)
