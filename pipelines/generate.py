"""The run every diffusion task shares: scheduler, adapters, clip skip, tomesd, seeded generators, one
batched call on the task's pipeline view of the loaded model, timings. Runs on the GPU worker thread only.

A task (pipelines/tasks/) adds only its pipeline class, its inputs and what makes two jobs batchable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tomesd
import torch
from PIL import Image

from pipelines.adapters import AdapterStore, activate_loras, attached
from pipelines.clip_skip import clip_skip_embeds, skipped_layers
from pipelines.registry import LoadedModel
from pipelines.schedulers import make_scheduler
from pipelines.spec import GenerationResult, TaskSpec


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
    # use_rand=False: the random variant forks the global torch RNG and breaks seed reproducibility.
    tomesd.apply_patch(pipe, ratio=ratio, use_rand=False)
    try:
        yield
    finally:
        tomesd.remove_patch(pipe)


def prompt_arguments(pipe: Any, prompt: str | list[str], negative: str | list[str], clip_skip: int,
                     is_sdxl: bool) -> dict[str, Any]:
    layers = skipped_layers(clip_skip)
    if layers == 0:
        return {"prompt": prompt, "negative_prompt": negative}
    if is_sdxl:
        return {"prompt": prompt, "negative_prompt": negative, "clip_skip": layers}
    with torch.inference_mode():
        return {
            "prompt_embeds": clip_skip_embeds(pipe, prompt, layers),
            "negative_prompt_embeds": clip_skip_embeds(pipe, negative, layers),
        }


def run(model: LoadedModel, spec: TaskSpec, adapters: AdapterStore | None = None, max_loras: int = 8) -> GenerationResult:
    """One job: scheduler -> adapters -> per-job pipeline view -> prompt encoding -> seeded call.

    Weights are shared with the cached model; schedulers, generators and activated adapters are per job.
    """
    return run_batch(model, [spec], adapters, max_loras)[0]


def run_batch(
    model: LoadedModel, specs: list[TaskSpec], adapters: AdapterStore | None = None, max_loras: int = 8
) -> list[GenerationResult]:
    """Several compatible jobs (equal batch_key) in one pipeline call, one generator per image, so each
    job's images come from its own seeds. A single spec takes exactly the unbatched path."""
    started = time.perf_counter()
    first = specs[0]
    if len({spec.batch_key() for spec in specs}) != 1 or (len(specs) > 1 and first.batch_key() is None):
        raise ValueError("these jobs cannot share a pipeline call")
    is_sdxl = model.family == "sdxl"
    wanted = first.adapters
    if adapters is None and (wanted.loras or wanted.vae or wanted.embeddings or wanted.ip_adapter):
        raise ValueError("this job needs adapters but no AdapterStore was given")
    # 1. A fresh scheduler; the job's LoRA set (or none) made active on the shared modules.
    choice = make_scheduler(
        first.scheduler, model.pipe.scheduler.config,
        karras=first.use_karras_sigmas, algorithm_type=first.algorithm_type, seed=first.seed,
    )
    if adapters is not None:
        activate_loras(model, adapters, wanted.loras, keep=max_loras)
    try:
        pipe, images = _call(model, specs, adapters, choice.scheduler, is_sdxl)
    finally:
        if wanted.loras:
            # The job's LoRA set ends with the job, whatever the next caller does.
            model.pipe.disable_lora()
    seconds = time.perf_counter() - started
    results, offset = [], 0
    for spec in specs:
        results.append(GenerationResult(
            images=spec.finish(pipe, images[offset : offset + spec.samples]),
            seeds=sample_seeds(spec.seed, spec.samples),
            scheduler_used=type(choice.scheduler).__name__,
            is_sdxl=is_sdxl,
            karras_applied=choice.karras_applied,
            algorithm_type_applied=choice.algorithm_type_applied,
            ignored=choice.ignored,
            timings={"generate": seconds, "batch_jobs": float(len(specs))},
            meta=spec.result_meta(pipe),
        ))
        offset += spec.samples
    return results


def _call(model: LoadedModel, specs: list[TaskSpec], adapters: AdapterStore | None, scheduler: Any,
          is_sdxl: bool) -> tuple[Any, list[Image.Image]]:
    first = specs[0]
    wanted = first.adapters
    # The task's view of the loaded model, sharing its weights; a VAE override lives in the view only.
    overrides: dict[str, Any] = {"scheduler": scheduler}
    if wanted.vae is not None and adapters is not None:
        overrides["vae"] = adapters.vae(wanted.vae, model)
    pipe = first.pipelines[model.family].from_pipe(model.pipe, **overrides)
    pipe.set_progress_bar_config(disable=True)
    if len(specs) == 1 and not first.images_per_sample:
        prompt: str | list[str] = first.prompt
        negative: str | list[str] = first.negative_prompt
        images: dict[str, Any] = first.image_arguments()
        per_prompt = first.samples
    else:
        # Expanded per image: diffusers pairs images with prompts only at one image per prompt.
        prompt = [s.prompt for s in specs for _ in range(s.samples)]
        negative = [s.negative_prompt for s in specs for _ in range(s.samples)]
        per_job = [s.image_arguments() for s in specs]
        images = {name: [job[name] for s, job in zip(specs, per_job, strict=True)
                         for _ in range(s.samples)] for name in per_job[0]}
        per_prompt = 1
    # One generator per image, so image i of a job is reproducible on its own from that job's seed + i.
    generators = [g for s in specs for g in make_generators(sample_seeds(s.seed, s.samples))]
    job_adapters = attached(pipe, model, adapters, wanted) if adapters is not None else _no_adapters()
    with job_adapters as extra, token_merging(pipe, first.tomesd, first.tomesd_ratio), torch.inference_mode():
        output = pipe(
            **prompt_arguments(pipe, prompt, negative, first.clip_skip, is_sdxl),
            **extra,
            **images,
            **first.call_arguments(),
            num_inference_steps=first.steps,
            guidance_scale=first.guidance_scale,
            num_images_per_prompt=per_prompt,
            generator=generators,
            output_type="pil",
        )
    return pipe, list(output.images)
