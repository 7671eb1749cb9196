"""Input images (init_image, ip_adapter_image): a guarded URL download, or base64 / data URI decoding.

Runs on the event loop; decoding the bytes into pixels happens in pipelines.images, off the loop.
"""

from __future__ import annotations

import base64
import binascii

from server.api.errors import ApiError
from server.io.url_guard import UrlFetchFailed, UrlGuard, UrlRefused

FETCH_FAILED = "Unable to fetch image from provided URL"
BASE64_REFUSED = "init image must be a valid url when base64 is a representation of false"


def decode_base64_image(value: str, max_bytes: int, field: str = "init_image") -> bytes:
    """Raw base64 or a data: URI -> bytes; the size is checked before anything is decoded."""
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    value = "".join(value.split())
    if len(value) * 3 // 4 > max_bytes:
        raise ApiError(f"{field} is larger than {max_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"{field} is not valid base64") from None


async def load_image_bytes(value: str, *, base64_mode: bool, guard: UrlGuard, field: str = "init_image") -> bytes:
    if value.startswith(("http://", "https://")):
        try:
            return await guard.get(value)
        except UrlRefused as exc:
            raise ApiError(f"{FETCH_FAILED}: {exc.reason}") from None
        except UrlFetchFailed:
            raise ApiError(FETCH_FAILED) from None
    if not base64_mode:
        raise ApiError(BASE64_REFUSED.replace("init image", field.replace("_", " ")))
    return decode_base64_image(value, guard.max_bytes, field)
