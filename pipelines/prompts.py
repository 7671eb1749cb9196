"""Prompt enhancement and style presets as the hosted API does them (docs/API.md).

The quality suffix and default negative are the hosted example's texts; the style presets are data in
pipelines/data/styles.yaml, one per hosted style name, with texts written for sdgate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

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


@dataclass(frozen=True)
class Style:
    name: str
    template: str  # contains "{prompt}"
    negative: str | None


class UnknownStyle(ValueError):
    pass


@cache
def styles() -> dict[str, Style]:
    data = yaml.safe_load(resources.files("pipelines").joinpath("data/styles.yaml").read_text())
    negatives = data["negatives"]
    return {
        name: Style(name, entry["prompt"], negatives[entry["negative"]] if entry["negative"] else None)
        for name, entry in data["styles"].items()
    }


def get_style(name: str) -> Style:
    try:
        return styles()[name]
    except KeyError:
        raise UnknownStyle(f"Unknown enhance_style: {name}") from None


def build_prompt(prompt: str, *, enhance: bool, style: Style | None = None, instance_prompt: str | None = None) -> str:
    """The positive prompt really sent to the model: trigger words, then the style or the quality suffix."""
    if instance_prompt:
        prompt = f"{instance_prompt} {prompt}"
    if style is not None:
        # str.replace, not str.format: user prompts may contain braces.
        return style.template.replace("{prompt}", prompt)
    if enhance:
        return f"{prompt} {QUALITY_SUFFIX}"
    return prompt


def build_negative_prompt(negative: str | None, style: Style | None = None, *, default: bool = True) -> str:
    # The default negative is appended (with the hosted API's leading space when the user sent none), except
    # on the realtime endpoints, whose hosted meta echoes the user's negative prompt unchanged.
    text = f"{negative or ''} {DEFAULT_NEGATIVE}" if default else negative or ""
    if style is not None and style.negative:
        text = f"{text}, {style.negative}" if text else style.negative
    return text
