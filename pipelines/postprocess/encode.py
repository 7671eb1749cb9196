"""Image encoding for stored outputs. Runs on the worker thread, never on the event loop."""

from __future__ import annotations

import base64
import io

from PIL import Image


def to_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # compress_level 1: PNG size barely matters next to encode time, which can rival a GPU generation.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def to_base64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")
