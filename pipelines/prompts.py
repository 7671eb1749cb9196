"""Prompt enhancement as the hosted API does it (API.md §7); the texts are the hosted example's."""

from __future__ import annotations

QUALITY_SUFFIX = (
    "hyperrealistic, full body, detailed clothing, highly detailed, cinematic lighting, stunningly beautiful, "
    "intricate, sharp focus, f/1. 8, 85mm, (centered image composition), (professionally color graded), "
    "((bright soft diffused light)), volumetric fog, trending on instagram, trending on tumblr, HDR 4K, 8K"
)
DEFAULT_NEGATIVE = (
    "(child:1.5), ((((underage)))), ((((child)))), (((kid))), (((preteen))), (teen:1.5) ugly, tiling, "
    "poorly drawn hands, poorly drawn feet, poorly drawn face, out of frame, extra limbs, disfigured, deformed, "
    "body out of frame, bad anatomy, watermark, signature, cut off, low contrast, underexposed, overexposed, "
    "bad art, beginner, amateur, distorted face, blurry, draft, grainy"
)


def build_prompt(prompt: str, *, enhance: bool, instance_prompt: str | None = None) -> str:
    """The positive prompt really sent to the model: trigger words first, then the quality suffix."""
    if instance_prompt:
        prompt = f"{instance_prompt} {prompt}"
    if enhance:
        prompt = f"{prompt} {QUALITY_SUFFIX}"
    return prompt


def build_negative_prompt(negative: str | None) -> str:
    # Always appended, with the hosted API's leading space when the user sent none.
    return f"{negative or ''} {DEFAULT_NEGATIVE}"
