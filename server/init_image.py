"""Fetching init_image (and later ip_adapter_image): guarded URL download, or base64 / data URI decoding.

Runs on the event loop with async httpx; decoding the bytes into an image happens in pipelines.images.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx

from server.errors import ApiError

FETCH_FAILED = "Unable to fetch image from provided URL"
BASE64_REFUSED = "init image must be a valid url when base64 is a representation of false"
MAX_REDIRECTS = 3


class RefusedAddress(ApiError):
    pass


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url_host(url: str, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts that resolve to any non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(FETCH_FAILED)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ApiError(FETCH_FAILED) from None
    # Every resolved address must be public: one private answer is enough to reach an internal service.
    if not infos or not all(is_public_address(str(info[4][0]).split("%")[0]) for info in infos):
        raise RefusedAddress(f"{FETCH_FAILED}: the address is not allowed")


async def download(url: str, *, allow_private: bool, timeout: float, max_bytes: int) -> bytes:
    """GET url with a byte cap and redirect hops re-checked against the address guard."""
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await check_url_host(url, allow_private)
            try:
                async with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise ApiError(FETCH_FAILED)
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise ApiError(f"{FETCH_FAILED}: the image is larger than {max_bytes} bytes")
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.HTTPError:
                raise ApiError(FETCH_FAILED) from None
    raise ApiError(f"{FETCH_FAILED}: too many redirects")


def decode_base64_image(value: str, max_bytes: int) -> bytes:
    """Raw base64 or a data: URI -> bytes; size is checked before decoding."""
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    value = "".join(value.split())
    if len(value) * 3 // 4 > max_bytes:
        raise ApiError(f"init_image is larger than {max_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("init_image is not valid base64") from None


async def load_image_bytes(
    value: str, *, base64_mode: bool, allow_private: bool, timeout: float, max_bytes: int
) -> bytes:
    if value.startswith(("http://", "https://")):
        return await download(value, allow_private=allow_private, timeout=timeout, max_bytes=max_bytes)
    if not base64_mode:
        raise ApiError(BASE64_REFUSED)
    return decode_base64_image(value, max_bytes)
