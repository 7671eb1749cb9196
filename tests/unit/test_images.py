"""Init-image decoding and output sizing (docs/API.md)."""

import io
import os

import pytest
from PIL import Image

from pipelines.images import ImageError, decode_image, output_size


@pytest.mark.parametrize(
    "size, max_side, expected",
    [((736, 736), 1024, (736, 736)), ((40, 36), 1024, (40, 32)), ((2048, 1024), 1024, (1024, 512)),
     ((1000, 3000), 1024, (336, 1024)), ((7, 100), 1024, None), ((100, 100), 64, (64, 64))],
)
def test_output_size(size: tuple[int, int], max_side: int, expected: tuple[int, int] | None) -> None:
    if expected is None:
        with pytest.raises(ImageError, match="too small"):
            output_size(*size, max_side)
    else:
        assert output_size(*size, max_side) == expected


def encoded(fmt: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    # Noise, so the file does not compress into a few bytes and truncation really cuts pixel data.
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_decodes_allowed_formats_to_rgb() -> None:
    for fmt, mode in (("PNG", "RGBA"), ("JPEG", "L"), ("WEBP", "RGB")):
        assert decode_image(encoded(fmt, mode)).mode == "RGB"


@pytest.mark.parametrize("data", [b"not an image", encoded("PNG")[:4000], encoded("GIF", "P"), b""])
def test_rejects_non_images_and_other_formats(data: bytes) -> None:
    with pytest.raises(ImageError):
        decode_image(data)


def test_decompression_bomb_is_refused() -> None:
    with pytest.raises(ImageError, match="too large"):
        decode_image(encoded("PNG"), max_pixels=16)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": a phone photo taken in portrait
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert decode_image(buffer.getvalue()).size == (20, 40)
