"""Decoding untrusted input images and sizing them for the model. CPU only, no diffusers."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")


class ImageError(ValueError):
    """The bytes are not a usable image; the message is safe to show to the client."""


def decode_image(data: bytes, *, what: str = "init_image", max_pixels: int = 40_000_000) -> Image.Image:
    """Bytes -> RGB image with EXIF orientation applied; anything else raises ImageError."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ALLOWED_FORMATS:
                raise ImageError(f"{what} must be a PNG, JPEG or WebP image")
            probe.load()
            image = ImageOps.exif_transpose(probe) or probe
            return image.convert("RGB")
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{what} is too large") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} is not a valid image") from exc


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Init size, scaled down (never up) so the longer side fits max_side, each side floored to a multiple of 8."""
    scale = min(1.0, max_side / max(width, height))
    w, h = int(width * scale) // 8 * 8, int(height * scale) // 8 * 8
    if w < 8 or h < 8:
        raise ImageError("init_image is too small")
    return w, h


def fit_to_output(image: Image.Image, max_side: int) -> Image.Image:
    size = output_size(image.width, image.height, max_side)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def prepare_mask(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Any mask -> one channel at the output size, binarised at 50 %: white (>= 128) repaints, black keeps.

    Binarising here, not only inside the pipeline, makes the kept area exact when the input is pasted back.
    """
    grey = image.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return grey.point(lambda value: 255 if value >= 128 else 0)
