"""Hosted-API scheduler names -> a fresh diffusers scheduler per job, built from the model's own config."""

from __future__ import annotations

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
# FACTS.md §3), so each runs the closest sampler that can. README explains each choice.
SUBSTITUTES = {
    "DDIMInverseScheduler": "DDIMScheduler",  # the inverse of DDIM; forward DDIM is its denoising twin
    "IPNDMScheduler": "PNDMScheduler",  # improved PNDM -> the pseudo-numerical (PLMS) sampler it refines
    "KarrasVeScheduler": "EulerDiscreteScheduler",  # Karras' stochastic sampler; Euler is its deterministic core
    "ScoreSdeVeScheduler": "EulerAncestralDiscreteScheduler",  # a stochastic SDE sampler -> ancestral Euler
}


class SchedulerError(ValueError):
    pass


def scheduler_class_name(name: str) -> str:
    """The diffusers class that really runs for a hosted scheduler name."""
    if name not in SCHEDULER_NAMES:
        raise SchedulerError(f"Unknown scheduler: {name}. Valid schedulers: {', '.join(SCHEDULER_NAMES)}")
    return SUBSTITUTES.get(name, name)


def make_scheduler(name: str, base_config: Any) -> Any:
    """A new scheduler instance; never shared between jobs because schedulers keep per-run state."""
    cls = getattr(diffusers, scheduler_class_name(name))
    return cls.from_config(base_config)
