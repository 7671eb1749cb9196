"""One img2img run on a loaded model. Runs on the GPU worker thread only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tomesd
import torch

from pipelines.adapters import AdapterStore, activate_loras, attached
from pipelines.clip_skip import clip_skip_embeds, skipped_layers
from pipelines.registry import LoadedModel
from pipelines.schedulers import make_scheduler
from pipelines.spec import GenerationResult, GenerationSpec


def sample_seeds(seed: int, samples: int) -> list[int]:
    return [(seed + i) % 2**32 for i in range(samples)]


def make_generators(seeds: list[int]) -> list[torch.Generator]:
    # CPU generators: the initial noise is then the same on any device, so a seed reproduces across CPU and GPU.
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


@contextmanager
def _no_adapters() -> Iterator[dict[str, Any]]:
    yield {}


@contextmanager
def token_merging(pipe: Any, enabled: bool, ratio: float) -> Iterator[None]:
    """tomesd on the shared UNet for this job only, so the next job runs an unpatched UNet."""
    if not enabled:
        yield
        return
    # use_rand=False: the random variant forks the global torch RNG and breaks seed reproducibility (FACTS.md §4).
    tomesd.apply_patch(pipe, ratio=ratio, use_rand=False)
    try:
        yield
    finally:
        tomesd.remove_patch(pipe)


def prompt_arguments(pipe: Any, spec: GenerationSpec, is_sdxl: bool) -> dict[str, Any]:
    layers = skipped_layers(spec.clip_skip)
    if layers == 0:
        return {"prompt": spec.prompt, "negative_prompt": spec.negative_prompt}
    if is_sdxl:
        return {"prompt": spec.prompt, "negative_prompt": spec.negative_prompt, "clip_skip": layers}
    with torch.inference_mode():
        return {
            "prompt_embeds": clip_skip_embeds(pipe, spec.prompt, layers),
            "negative_prompt_embeds": clip_skip_embeds(pipe, spec.negative_prompt, layers),
        }


def run_img2img(
    model: LoadedModel, spec: GenerationSpec, adapters: AdapterStore | None = None, max_loras: int = 8
) -> GenerationResult:
    """scheduler -> adapters -> per-job pipeline view -> prompt encoding -> seeded call.

    Weights are shared with the cached model; schedulers, generators and activated adapters are per job.
    """
    started = time.perf_counter()
    is_sdxl = model.family == "sdxl"
    wanted = spec.adapters
    if adapters is None and (wanted.loras or wanted.vae or wanted.embeddings or wanted.ip_adapter):
        raise ValueError("this job needs adapters but no AdapterStore was given")
    # 1. A fresh scheduler; the job's LoRA set (or none) made active on the shared modules.
    choice = make_scheduler(
        spec.scheduler, model.pipe.scheduler.config,
        karras=spec.use_karras_sigmas, algorithm_type=spec.algorithm_type, seed=spec.seed,
    )
    if adapters is not None:
        activate_loras(model, adapters, wanted.loras, keep=max_loras)
    try:
        output = _call(model, spec, adapters, choice.scheduler, is_sdxl)
    finally:
        if wanted.loras:
            # The job's LoRA set ends with the job, whatever the next caller does.
            model.pipe.disable_lora()
    return GenerationResult(
        images=list(output.images),
        seeds=sample_seeds(spec.seed, spec.samples),
        scheduler_used=type(choice.scheduler).__name__,
        is_sdxl=is_sdxl,
        karras_applied=choice.karras_applied,
        algorithm_type_applied=choice.algorithm_type_applied,
        ignored=choice.ignored,
        timings={"generate": time.perf_counter() - started},
    )


def _call(model: LoadedModel, spec: GenerationSpec, adapters: AdapterStore | None, scheduler: Any, is_sdxl: bool) -> Any:
    wanted = spec.adapters
    # A pipeline view sharing the loaded weights; a VAE override lives in the view only.
    overrides: dict[str, Any] = {"scheduler": scheduler}
    if wanted.vae is not None and adapters is not None:
        overrides["vae"] = adapters.vae(wanted.vae, model)
    pipe = type(model.pipe).from_pipe(model.pipe, **overrides)
    pipe.set_progress_bar_config(disable=True)
    job_adapters = attached(pipe, model, adapters, wanted) if adapters is not None else _no_adapters()
    with job_adapters as extra, token_merging(pipe, spec.tomesd, spec.tomesd_ratio), torch.inference_mode():
        return pipe(
            **prompt_arguments(pipe, spec, is_sdxl),
            **extra,
            image=spec.init_image,
            strength=spec.strength,
            num_inference_steps=spec.steps,
            guidance_scale=spec.guidance_scale,
            num_images_per_prompt=spec.samples,
            # One generator per sample, so sample i is reproducible on its own from seed + i.
            generator=make_generators(sample_seeds(spec.seed, spec.samples)),
            output_type="pil",
        )
