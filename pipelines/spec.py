"""The typed job description that crosses from the HTTP layer into `pipelines/`, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from pipelines.adapters import AdapterSpec


@dataclass(frozen=True)
class GenerationSpec:
    """Everything one img2img run needs, already validated and resolved (no ModelsLab field names here).

    `init_image` is RGB at exactly `width` x `height`; sample i is generated from seed `(seed + i) mod 2**32`.
    `clip_skip` counts like the API (1 = no layer skipped); `algorithm_type` is the API value.
    """

    model_id: str
    init_image: Image.Image
    prompt: str
    negative_prompt: str
    width: int
    height: int
    strength: float = 0.7
    steps: int = 31
    guidance_scale: float = 7.5
    seed: int = 0
    samples: int = 1
    scheduler: str = "UniPCMultistepScheduler"
    use_karras_sigmas: bool = False
    algorithm_type: str | None = None
    clip_skip: int = 1
    tomesd: bool = False
    tomesd_ratio: float = 0.5
    adapters: AdapterSpec = field(default_factory=AdapterSpec)


@dataclass
class GenerationResult:
    images: list[Image.Image]
    seeds: list[int]
    scheduler_used: str
    is_sdxl: bool
    karras_applied: bool = False
    algorithm_type_applied: str | None = None
    ignored: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
