"""One img2img run on a loaded model. Runs on the GPU worker thread only."""

from __future__ import annotations

import time

import torch

from pipelines.registry import LoadedModel
from pipelines.schedulers import make_scheduler
from pipelines.spec import GenerationResult, GenerationSpec


def sample_seeds(seed: int, samples: int) -> list[int]:
    return [(seed + i) % 2**32 for i in range(samples)]


def make_generators(seeds: list[int]) -> list[torch.Generator]:
    # CPU generators: the initial noise is then the same on any device, so a seed reproduces across CPU and GPU.
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def run_img2img(model: LoadedModel, spec: GenerationSpec) -> GenerationResult:
    """resolve scheduler -> per-job pipeline view -> seeded call; weights are shared, state is not."""
    started = time.perf_counter()
    # 1. A fresh scheduler and a pipeline view sharing the loaded weights.
    scheduler = make_scheduler(spec.scheduler, model.pipe.scheduler.config)
    pipe = type(model.pipe).from_pipe(model.pipe, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    # 2. One generator per sample, so sample i is reproducible on its own from seed + i.
    seeds = sample_seeds(spec.seed, spec.samples)
    with torch.inference_mode():
        output = pipe(
            prompt=spec.prompt,
            negative_prompt=spec.negative_prompt,
            image=spec.init_image,
            strength=spec.strength,
            num_inference_steps=spec.steps,
            guidance_scale=spec.guidance_scale,
            num_images_per_prompt=spec.samples,
            generator=make_generators(seeds),
            output_type="pil",
        )
    return GenerationResult(
        images=list(output.images),
        seeds=seeds,
        scheduler_used=type(scheduler).__name__,
        is_sdxl=model.family == "sdxl",
        timings={"generate": time.perf_counter() - started},
    )
