"""The hosted API's scheduler names and how each maps to a diffusers class: plain data, no diffusers import,
so models.yaml validation and the request schemas can check a name without loading diffusers."""

from __future__ import annotations

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


def check_algorithm_type(value: str | None) -> str | None:
    """API value -> diffusers value (None = the scheduler's default); unknown values raise SchedulerError."""
    if value in (None, "", "none", "no"):
        return None
    if value not in ALGORITHM_TYPES:
        raise SchedulerError(f"algorithm_type must be one of: none, {', '.join(ALGORITHM_TYPES)}")
    return ALGORITHM_TYPES[value]


def scheduler_class_name(name: str) -> str:
    """The diffusers class that really runs for a hosted scheduler name."""
    if name not in SCHEDULER_NAMES:
        raise SchedulerError(f"Unknown scheduler: {name}. Valid schedulers: {', '.join(SCHEDULER_NAMES)}")
    return SUBSTITUTES.get(name, name)
