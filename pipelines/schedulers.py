"""Hosted-API scheduler names -> a fresh diffusers scheduler per job, built from the model's own config."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import diffusers

# The names and their checks live in a module without diffusers (models.yaml validation needs them at start-up);
# re-exported here for the code that builds schedulers.
from pipelines.scheduler_names import (
    ALGORITHM_TYPES,
    DEFAULT_SCHEDULER,
    SCHEDULER_NAMES,
    SUBSTITUTES,
    SchedulerError,
    check_algorithm_type,
    scheduler_class_name,
)

__all__ = [
    "ALGORITHM_TYPES", "DEFAULT_SCHEDULER", "SCHEDULER_NAMES", "SUBSTITUTES", "SchedulerChoice", "SchedulerError",
    "check_algorithm_type", "make_scheduler", "scheduler_class_name",
]


@dataclass
class SchedulerChoice:
    """The scheduler a job runs with, and which requested options it really took."""

    scheduler: Any
    karras_applied: bool
    algorithm_type_applied: str | None
    ignored: list[str] = field(default_factory=list)


def _init_params(cls: type) -> set[str]:
    # from_config silently drops kwargs the class does not take, so ask the constructor itself.
    return set(inspect.signature(cls.__init__).parameters)


def make_scheduler(
    name: str, base_config: Any, *, karras: bool = False, algorithm_type: str | None = None, seed: int = 0
) -> SchedulerChoice:
    """A new scheduler instance (schedulers keep per-run state, so never shared between jobs)."""
    cls = getattr(diffusers, scheduler_class_name(name))
    params = _init_params(cls)
    options: dict[str, Any] = {}
    ignored: list[str] = []
    if karras:
        if "use_karras_sigmas" in params:
            options["use_karras_sigmas"] = True
        else:
            ignored.append(f"use_karras_sigmas:{cls.__name__}")
    diffusers_algorithm = check_algorithm_type(algorithm_type)
    if diffusers_algorithm is not None:
        if cls.__name__ in ("DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler"):
            options["algorithm_type"] = diffusers_algorithm
        else:
            ignored.append(f"algorithm_type:{cls.__name__}")
    if "noise_sampler_seed" in params:
        # Brownian-tree samplers ignore the pipeline generator; seeding them keeps a seed reproducible.
        options["noise_sampler_seed"] = seed
    scheduler = cls.from_config(base_config, **options)
    return SchedulerChoice(scheduler, "use_karras_sigmas" in options, options.get("algorithm_type"), ignored)
