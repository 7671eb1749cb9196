"""Hosted-API scheduler names -> a fresh diffusers scheduler per job, built from the model's own config."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import diffusers

# The 18 names the hosted API lists, in its order.
SCHEDULER_NAMES = (
    "DDPMScheduler",
    "DDIMScheduler",
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "DPMSolverSinglestepScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "UniPCMultistepScheduler",
    "DDIMInverseScheduler",
    "DEISMultistepScheduler",
    "IPNDMScheduler",
    "KarrasVeScheduler",
    "ScoreSdeVeScheduler",
    "LCMScheduler",
)
DEFAULT_SCHEDULER = "UniPCMultistepScheduler"

# diffusers cannot run latent img2img with these four (no add_noise, or not a UNet2DCondition sampler;
# no diffusers equivalent), so each runs the closest sampler that can. README explains each choice.
SUBSTITUTES = {
    "DDIMInverseScheduler": "DDIMScheduler",  # the inverse of DDIM; forward DDIM is its denoising twin
    "IPNDMScheduler": "PNDMScheduler",  # improved PNDM -> the pseudo-numerical (PLMS) sampler it refines
    "KarrasVeScheduler": "EulerDiscreteScheduler",  # Karras' stochastic sampler; Euler is its deterministic core
    "ScoreSdeVeScheduler": "EulerAncestralDiscreteScheduler",  # a stochastic SDE sampler -> ancestral Euler
}


# The hosted docs write "dpmsolver+++"; diffusers has no such value: it means the SDE variant.
ALGORITHM_TYPES = {"dpmsolver+++": "sde-dpmsolver++", "dpmsolver++": "dpmsolver++", "sde-dpmsolver++": "sde-dpmsolver++"}


class SchedulerError(ValueError):
    pass


@dataclass
class SchedulerChoice:
    """The scheduler a job runs with, and which requested options it really took."""

    scheduler: Any
    karras_applied: bool
    algorithm_type_applied: str | None
    ignored: list[str] = field(default_factory=list)


def check_algorithm_type(value: str | None) -> str | None:
    """API value -> diffusers value (None = the scheduler's default); unknown values raise SchedulerError."""
    if value in (None, "", "none", "no"):
        return None
    if value not in ALGORITHM_TYPES:
        raise SchedulerError(f"algorithm_type must be one of: none, {', '.join(ALGORITHM_TYPES)}")
    return ALGORITHM_TYPES[value]


def _init_params(cls: type) -> set[str]:
    # from_config silently drops kwargs the class does not take, so ask the constructor itself.
    return set(inspect.signature(cls.__init__).parameters)


def scheduler_class_name(name: str) -> str:
    """The diffusers class that really runs for a hosted scheduler name."""
    if name not in SCHEDULER_NAMES:
        raise SchedulerError(f"Unknown scheduler: {name}. Valid schedulers: {', '.join(SCHEDULER_NAMES)}")
    return SUBSTITUTES.get(name, name)


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
