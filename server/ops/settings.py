"""Settings from SDGATE_* environment variables (pydantic-settings); CLI flags override them."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.fast_path import FastPathOptions


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SDGATE_", extra="ignore")

    config: Path = Field(default=Path("models.yaml"), description="models.yaml path")
    data_dir: Path = Field(default=Path("data"), description="job database and generated files")
    host: str = "127.0.0.1"
    port: int = 7860
    api_keys: SecretStr | None = Field(default=None, description="comma-separated accepted API keys")
    public_url: str | None = Field(default=None, description="base of links in responses; default http://HOST:PORT")
    allow_private_urls: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    sync_timeout: float = Field(default=30.0, ge=0)
    max_queue: int = Field(default=64, ge=1)
    inline_base64: bool = False
    max_side: int = Field(default=1024, ge=8)
    max_loaded_models: int = Field(default=1, ge=1, description="models kept on the device at once")
    vram_budget: int = Field(default=0, ge=0, description="bytes of device memory for models; 0 = 85% of the GPU")
    ram_budget: int = Field(default=0, ge=0, description="bytes of host RAM for parked models; 0 = half the RAM")
    pin_models: str | None = Field(default=None, description="comma-separated model ids never evicted")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(default="auto", description="auto: fp16 on CUDA, fp32 on CPU")
    channels_last: bool | None = Field(default=None, description="UNet channels_last; unset = on for CUDA")
    fuse_qkv: bool = Field(default=False, description="fused QKV projections (not combinable with LoRAs)")
    torch_compile: bool = Field(default=False, description="torch.compile the UNet at load (slow first call)")
    torch_threads: int = Field(
        default=0, ge=0,
        description="torch CPU threads, set once at start-up; 0 = automatic: on CPU half the usable CPUs "
        "(OMP_NUM_THREADS wins when set), on CUDA torch's default",
    )
    max_loras: int = Field(default=8, ge=1, description="LoRAs kept loaded per model (LRU)")
    max_vaes: int = Field(default=2, ge=1, description="override VAEs kept in memory (LRU)")
    fetch_timeout: float = Field(default=15.0, gt=0, description="seconds for one init_image download")
    max_download_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0, description="largest accepted HTTP request body")
    max_prompt_chars: int = Field(default=10_000, gt=0, description="longest prompt / negative_prompt")
    max_request_pixels: int = Field(
        default=4 * 1024 * 1024, gt=0, description="samples x output width x height allowed in one request"
    )
    key_failures_per_minute: int = Field(default=20, ge=1, description="bad keys per client address before 429")
    temp_ttl: float = Field(default=24 * 3600, gt=0, description="seconds a temp=yes file lives")
    sweep_interval: float = Field(default=600, gt=0, description="seconds between temp-file sweeps")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the data dir")
    db_upgrade: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="migrate the job database at start-up: auto = only SQLite (a shared database is upgraded "
        "once, by `sdgate db upgrade`); yes; no = refuse to start on an old schema",
    )
    max_attempts: int = Field(default=3, ge=1, description="runs of one job before a restart-interrupted job fails")
    lease_seconds: float = Field(
        default=30.0, gt=0, description="how long a job stays with a server that stopped renewing it"
    )
    shutdown_grace: float = Field(default=30.0, ge=0, description="seconds a running job may finish at shutdown")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key for X-Sdgate-Signature")
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff: float = Field(default=2.0, ge=0, description="seconds before the first retry; doubles each time")
    webhook_timeout: float = Field(default=30.0, gt=0)
    batching: bool = Field(default=True, description="run compatible queued jobs as one pipeline call")
    batch_window: float = Field(
        default=0.05, ge=0, description="seconds to wait for more compatible jobs once one is already waiting"
    )
    max_batch_images: int = Field(default=8, ge=1, description="images in one batched pipeline call")
    preload: str | None = Field(default=None, description="comma-separated model ids loaded and warmed at start")
    log_format: Literal["text", "json"] = "text"
    storage: Literal["local", "s3"] = Field(default="local", description="where generated files go")
    s3_bucket: str | None = Field(default=None, description="bucket for storage=s3")
    s3_prefix: str = Field(default="", description="key prefix inside the bucket, e.g. sdgate/")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, R2, ...)")
    s3_region: str | None = None
    s3_public_url: str | None = Field(default=None, description="public base URL of the bucket; unset = presigned links")
    tomesd_ratio: float = Field(default=0.5, gt=0, lt=1, description="share of tokens tomesd merges")
    backend: Literal["embedded", "ray"] = Field(
        default="embedded", description="embedded: this process runs the jobs; ray: GPU replicas on a Ray cluster"
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster to join (host:port, ray://..., auto); unset: sdgate serve starts a local one",
    )
    ray_app: str = Field(default="sdgate", description="Ray Serve application name")
    ray_models_per_replica: int = Field(default=2, ge=1, description="models a GPU replica keeps loaded (LRU)")
    ray_min_replicas: int = Field(default=1, ge=0, description="autoscaling floor of GPU replicas")
    ray_max_replicas: int = Field(default=1, ge=1, description="autoscaling ceiling of GPU replicas")
    ray_target_ongoing_requests: float = Field(default=2.0, gt=0, description="jobs per replica the autoscaler aims at")
    ray_upscale_delay: float = Field(default=30.0, ge=0, description="seconds of backlog before a replica is added")
    ray_downscale_delay: float = Field(default=600.0, ge=0, description="seconds idle before a replica is removed")
    ray_autoscale_window: float = Field(default=30.0, gt=0, description="seconds the autoscaler averages load over")
    ray_max_ongoing_requests: int = Field(default=8, ge=1, description="jobs one replica holds at once (batching)")
    ray_num_gpus: float = Field(default=1.0, ge=0, description="GPUs per replica; 0 runs replicas on CPUs")
    ray_num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved per replica")
    safety_backend: Literal["auto", "nudenet", "diffusers", "none"] = "auto"
    safety_checker_path: Path | None = Field(default=None, description="local StableDiffusionSafetyChecker folder")
    nudenet_threshold: float = Field(default=0.5, ge=0, le=1, description="nudenet confidence that flags an image")
    safety_threshold_shift: float = Field(
        default=0.0, description="added to every detector score; > 0 flags more images (testing / stricter policy)"
    )

    def key_list(self) -> list[str]:
        if self.api_keys is None:
            return []
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    def fast_path(self, device: str) -> FastPathOptions:
        auto = FastPathOptions.for_device(device)
        return FastPathOptions(
            precision=auto.precision if self.precision == "auto" else self.precision,
            channels_last=auto.channels_last if self.channels_last is None else self.channels_last,
            fuse_qkv=self.fuse_qkv,
            compile=self.torch_compile,
        )

    def pinned_ids(self) -> frozenset[str]:
        return frozenset(m.strip() for m in (self.pin_models or "").split(",") if m.strip())

    def preload_ids(self) -> list[str]:
        return [m.strip() for m in (self.preload or "").split(",") if m.strip()]

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'jobs.db'}"

    def db_upgrade_at_start(self) -> bool:
        if self.db_upgrade == "auto":
            return self.db_url().startswith("sqlite")
        return self.db_upgrade == "yes"

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UnsafeSettings(RuntimeError):
    pass


def check_keys_required(settings: Settings) -> None:
    """Refuse to serve an open (keyless) API anywhere but loopback."""
    if not settings.key_list() and not is_loopback_host(settings.host):
        raise UnsafeSettings(
            f"refusing to serve on {settings.host} without API keys: set SDGATE_API_KEYS=key1,key2 "
            "(clients send one as \"key\" in the body), or bind to 127.0.0.1"
        )
