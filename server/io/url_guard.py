"""UrlGuard: every server-side fetch (init_image, ip_adapter_image, webhooks) goes through here.

The host is resolved once, every resolved address is checked, and the connection goes to the checked
address (the URL is rewritten to the IP, with Host and TLS SNI set to the original name), so a DNS
answer that changes between check and connect (rebinding) cannot redirect us. Redirects are followed a
few times, each hop checked again; timeouts and a byte cap apply while streaming.

Written here because httpx has no hook to pin a resolved address per request, and no maintained
library does the check-then-connect-to-the-same-address step for asyncio clients.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlRefused(Exception):
    """The URL may not be fetched; `reason` is safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UrlFetchFailed(Exception):
    """The fetch failed (DNS, connection, timeout, HTTP status); `reason` says why and is safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


PRIVATE_REFUSED = ("the address is not allowed "
                   "(private or loopback; set SDGATE_ALLOW_PRIVATE_URLS=1 to allow your own network)")
DNS_FAILED = "the host name was not found (DNS lookup failed)"


def http_status_text(code: int) -> str:
    """The standard phrase, never the server's own (whatever a remote server says stays out of our answers)."""
    return f"the server answered HTTP {code} {httpx.codes.get_reason_phrase(code)}".rstrip()


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str  # the Content-Type header's media type, lower case; "" when absent


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (incl. 169.254.169.254), CGNAT, multicast, unspecified, reserved."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class PinnedUrl:
    url: str  # scheme://<checked ip>:port/path?query
    host_header: str
    sni_hostname: str | None


@dataclass
class UrlGuard:
    """Fetches URLs from the open internet safely. `resolver` and `transport` are seams for tests."""

    allow_private: bool
    timeout: float
    max_bytes: int
    max_redirects: int = 3
    resolver: Resolver = system_resolver
    transport: httpx.AsyncBaseTransport | None = None

    async def pin(self, url: str) -> PinnedUrl:
        """Resolve once and check; the returned URL connects to exactly the address that was checked."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise UrlRefused("only http and https URLs are allowed")
        host = parts.hostname
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise UrlRefused("the URL has an invalid port") from None
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self.resolver(host, port)
            except OSError:
                raise UrlFetchFailed(DNS_FAILED) from None
        if not addresses:
            raise UrlFetchFailed(DNS_FAILED)
        # Every answer must be public: one private answer is enough to reach an internal service.
        if not self.allow_private and not all(is_public_address(a) for a in addresses):
            raise UrlRefused(PRIVATE_REFUSED)
        ip = addresses[0]
        ip_netloc = f"[{ip}]" if ":" in ip else ip
        if parts.port:
            ip_netloc += f":{parts.port}"
        pinned = urlunsplit((parts.scheme, ip_netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rpartition("@")[2]  # never forward userinfo
        return PinnedUrl(pinned, host_header, host if parts.scheme == "https" else None)

    @property
    def connect_timeout(self) -> float:
        return min(self.timeout, 10.0)

    def _client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        return httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=self.transport, trust_env=False)

    def _request(self, client: httpx.AsyncClient, method: str, pinned: PinnedUrl, **kwargs: object) -> httpx.Request:
        headers = {"Host": pinned.host_header, **(kwargs.pop("headers", None) or {})}  # type: ignore[dict-item]
        extensions = {"sni_hostname": pinned.sni_hostname} if pinned.sni_hostname else {}
        return client.build_request(method, pinned.url, headers=headers, extensions=extensions, **kwargs)  # type: ignore[arg-type]

    def _failure(self, exc: httpx.HTTPError) -> UrlFetchFailed:
        """An httpx error in words a client can act on (no addresses, nothing from inside the server)."""
        if isinstance(exc, httpx.ConnectTimeout):
            return UrlFetchFailed(f"timed out after {self.connect_timeout:g} s connecting to the host")
        if isinstance(exc, httpx.TimeoutException):
            return UrlFetchFailed(f"timed out after {self.timeout:g} s")
        if isinstance(exc, httpx.ConnectError):
            return UrlFetchFailed("could not connect to the host (connection refused or unreachable)")
        return UrlFetchFailed(f"the download failed ({type(exc).__name__})")

    async def get(self, url: str) -> bytes:
        """GET with the byte cap enforced while streaming; redirects followed up to max_redirects, each re-checked."""
        return (await self.fetch(url)).content

    async def fetch(self, url: str) -> Fetched:
        """As get, with the answer's Content-Type."""
        async with self._client() as client:
            for _ in range(self.max_redirects + 1):
                pinned = await self.pin(url)
                try:
                    response = await client.send(self._request(client, "GET", pinned), stream=True)
                    try:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise UrlFetchFailed(http_status_text(response.status_code))
                        declared = int(response.headers.get("content-length") or 0)
                        if declared > self.max_bytes:
                            raise UrlRefused(f"the image is larger than {self.max_bytes} bytes")
                        chunks, size = [], 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > self.max_bytes:
                                raise UrlRefused(f"the image is larger than {self.max_bytes} bytes")
                            chunks.append(chunk)
                        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                        return Fetched(b"".join(chunks), content_type)
                    finally:
                        await response.aclose()
                except httpx.HTTPError as exc:
                    raise self._failure(exc) from None
        raise UrlRefused("too many redirects")

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> int:
        """POST without following redirects (a webhook receiver answers, it does not send us elsewhere)."""
        async with self._client() as client:
            pinned = await self.pin(url)
            try:
                response = await client.send(self._request(client, "POST", pinned, content=content, headers=headers))
            except httpx.HTTPError as exc:
                raise self._failure(exc) from None
            return response.status_code
