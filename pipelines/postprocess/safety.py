"""NSFW detection and replacement of flagged images (safety_checker / safety_checker_type).

Detectors sit behind one interface: `scores(images)` gives one number per image, and an image is flagged
when `score + shift > 0` (0 = the detector's own threshold; a positive shift makes the check stricter).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

log = logging.getLogger(__name__)

ReplaceMode = Literal["blur", "sensitive_content_text", "pixelate", "black"]
NOTICE = "Sensitive content"


class Detector(Protocol):
    name: str

    def scores(self, images: list[Image.Image]) -> list[float]: ...


class NudeNetDetector:
    """nudenet's bundled 320n ONNX model (offline). Score = best exposed-body-part confidence - threshold."""

    name = "nudenet"
    EXPOSED = frozenset({
        "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    })

    def __init__(self, threshold: float = 0.5) -> None:
        from nudenet import NudeDetector

        self.detector = NudeDetector()
        self.threshold = threshold

    def scores(self, images: list[Image.Image]) -> list[float]:
        out = []
        for image in images:
            # nudenet takes BGR arrays, not PIL images.
            bgr = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()
            found = [d["score"] for d in self.detector.detect(bgr) if d["class"] in self.EXPOSED]
            out.append(max(found, default=0.0) - self.threshold)
        return out


class DiffusersDetector:
    """diffusers' StableDiffusionSafetyChecker from a local folder (weights + preprocessor_config.json).

    Score = the checker's own largest concept score (cosine similarity - concept threshold), computed
    from its tensors so flagged images are not blacked out behind our back.
    """

    name = "diffusers"

    def __init__(self, folder: Path) -> None:
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPImageProcessor

        self.checker = StableDiffusionSafetyChecker.from_pretrained(str(folder), local_files_only=True).eval()
        self.processor = CLIPImageProcessor.from_pretrained(str(folder), local_files_only=True)

    @torch.no_grad()
    def scores(self, images: list[Image.Image]) -> list[float]:
        checker = self.checker
        pixels = self.processor(images, return_tensors="pt").pixel_values
        embeds = checker.visual_projection(checker.vision_model(pixels)[1])
        embeds = torch.nn.functional.normalize(embeds, dim=-1)
        special = embeds @ torch.nn.functional.normalize(checker.special_care_embeds, dim=-1).T
        concepts = embeds @ torch.nn.functional.normalize(checker.concept_embeds, dim=-1).T
        # As in the checker: a special-care hit makes every concept 0.01 easier to trigger.
        bump = ((special - checker.special_care_embeds_weights) > 0).any(dim=1, keepdim=True) * 0.01
        return ((concepts - checker.concept_embeds_weights) + bump).max(dim=1).values.tolist()


def load_detector(backend: str, checker_path: Path | None, nudenet_threshold: float) -> Detector | None:
    """The configured detector, or None (with a warning) when none can run on this machine."""
    nudenet_ok = importlib.util.find_spec("nudenet") is not None
    diffusers_ok = checker_path is not None and (checker_path / "config.json").is_file()
    if backend in ("auto", "nudenet") and nudenet_ok:
        return NudeNetDetector(nudenet_threshold)
    if backend in ("auto", "diffusers") and diffusers_ok:
        assert checker_path is not None
        return DiffusersDetector(checker_path)
    log.warning(
        "no NSFW detector available (backend=%s): nudenet (a dependency of sdgate) did not import, and no "
        "SDGATE_SAFETY_CHECKER_PATH points at a local StableDiffusionSafetyChecker folder; requests with "
        "safety_checker=yes will be refused",
        backend,
    )
    return None


def _blur(image: Image.Image) -> Image.Image:
    # Downscale first so the blur radius is large relative to content at any size, then smooth.
    small = image.resize((max(1, image.width // 16), max(1, image.height // 16)), Image.Resampling.BILINEAR)
    return small.resize(image.size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(max(image.size) / 16))


def _pixelate(image: Image.Image) -> Image.Image:
    blocks = 8  # blocks along the longer side: a silhouette at most
    scale = blocks / max(image.size)
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BOX)
    return small.resize(image.size, Image.Resampling.NEAREST)


def _notice(image: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", image.size, (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    size = max(6, int(image.width / (len(NOTICE) * 0.62)))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), NOTICE, font=font)
    draw.text(((image.width - (right - left)) / 2 - left, (image.height - (bottom - top)) / 2 - top),
              NOTICE, fill=(235, 235, 235), font=font)
    return canvas


REPLACEMENTS = {
    "blur": _blur,
    "pixelate": _pixelate,
    "black": lambda image: Image.new("RGB", image.size, (0, 0, 0)),
    "sensitive_content_text": _notice,
}


@dataclass
class SafetyFilter:
    """Runs the detector and replaces flagged images; unflagged images are returned untouched."""

    detector: Detector
    shift: float = 0.0

    def apply(self, images: list[Image.Image], mode: ReplaceMode) -> tuple[list[Image.Image], list[bool]]:
        flags = [score + self.shift > 0 for score in self.detector.scores(images)]
        replaced = [REPLACEMENTS[mode](image) if flagged else image for image, flagged in zip(images, flags, strict=True)]
        return replaced, flags
