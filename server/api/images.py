"""Input images (init_image, ip_adapter_image): a guarded URL download, or base64 / data URI decoding.

Runs on the event loop; decoding the bytes into pixels happens in pipelines.images, off the loop.
Errors start with the hosted wording and append what went wrong and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import re

from server.api.errors import ApiError
from server.io.url_guard import UrlFetchFailed, UrlGuard, UrlRefused

FETCH_FAILED = "Unable to fetch image from provided URL"
BASE64_REFUSED = "init image must be a valid url when base64 is a representation of false"
BASE64_HINT = '; send "base64": "yes" to pass the image as base64'
NEITHER_HINT = "; the value is neither an http(s) URL nor base64"
SCHEME_HINT = "; only http:// and https:// URLs are fetched"
# Long runs of the base64 alphabet (standard or URL-safe), optionally padded: a file name or a word is not this.
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
# Answers that are pages, not pictures (an image page's link instead of the image's own link, an error page).
_NOT_IMAGE_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml", "application/javascript")
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")


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


def looks_like_base64(value: str) -> bool:
    """A data: URI, or a long run of base64 text (whitespace and line breaks allowed)."""
    if value.startswith("data:"):
        return True
    return _BASE64_TEXT.fullmatch("".join(value[:4096].split())) is not None


def _not_base64_hint(value: str) -> str:
    if looks_like_base64(value):
        return BASE64_HINT
    return SCHEME_HINT if "://" in value[:40] else NEITHER_HINT


def _check_is_image(content: bytes, content_type: str) -> None:
    if content_type.startswith(_NOT_IMAGE_TYPES) and not content.startswith(_IMAGE_MAGIC):
        raise ApiError(f"{FETCH_FAILED}: the URL answered {content_type}, not an image")


async def load_image_bytes(value: str, *, base64_mode: bool, guard: UrlGuard, field: str = "init_image") -> bytes:
    if value.startswith(("http://", "https://")):
        try:
            fetched = await guard.fetch(value)
        except (UrlRefused, UrlFetchFailed) as exc:
            raise ApiError(f"{FETCH_FAILED}: {exc.reason}") from None
        _check_is_image(fetched.content, fetched.content_type)
        return fetched.content
    if not base64_mode:
        refused = BASE64_REFUSED.replace("init image", field.replace("_", " "))
        raise ApiError(refused + _not_base64_hint(value))
    return decode_base64_image(value, guard.max_bytes, field)
