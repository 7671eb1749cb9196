"""The typed job description that crosses from the server into `pipelines/`, and what comes back.

`TaskSpec` holds what every diffusion task shares; each module in `pipelines/tasks/` subclasses it with
the inputs its task adds, the pipeline view it runs and what else two jobs must share to be batched.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from pipelines.adapters import AdapterSpec


@dataclass(frozen=True)
class TaskSpec:
    """Everything one run needs, already validated and resolved (no hosted-API field names here).

    Sample i is generated from seed `(seed + i) mod 2**32`. `clip_skip` counts like the API (1 = no layer
    skipped); `algorithm_type` is the API value. `width` x `height` is the output size.
    """

    task: ClassVar[str]
    # family -> the diffusers pipeline class whose view (from_pipe on the loaded model) runs this task
    pipelines: ClassVar[dict[str, type]]
    # Inpainting checkpoints (9-channel UNets) run only the tasks that set this.
    runs_inpainting_models: ClassVar[bool] = False
    # Pass the job's images once per sample even when it runs alone, for pipelines that encode each input
    # image with its own generator (inpaint): then a job's sample i is the same alone or batched.
    images_per_sample: ClassVar[bool] = False

    model_id: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
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

    def call_arguments(self) -> dict[str, Any]:
        """Pipeline arguments that batched jobs share (their batch key guarantees they are equal)."""
        return {}

    def image_arguments(self) -> dict[str, Image.Image]:
        """Per-job image arguments; a batched call gets one list entry per generated image."""
        return {}

    def finish(self, pipe: Any, images: list[Image.Image]) -> list[Image.Image]:
        """The task's last step on this job's images, with the pipeline view that made them."""
        return images

    def result_meta(self, pipe: Any) -> dict[str, Any]:
        """What the task reports about how it ran (added to the answer's meta)."""
        return {}

    def task_batch_key(self) -> tuple[Hashable, ...]:
        """What else, beyond the shared settings, jobs of this task must agree on to share one call."""
        return ()

    def batch_key(self) -> Hashable | None:
        """Jobs with equal keys can share one pipeline call; None = this job runs alone (IP-Adapter jobs)."""
        if self.adapters.ip_adapter is not None:
            return None
        return (self.task, self.model_id, self.adapters, self.scheduler, self.use_karras_sigmas, self.algorithm_type,
                self.steps, self.guidance_scale, self.width, self.height, self.clip_skip, self.tomesd,
                self.tomesd_ratio, *self.task_batch_key())


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
    meta: dict[str, Any] = field(default_factory=dict)
