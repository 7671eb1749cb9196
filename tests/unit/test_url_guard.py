"""UrlGuard refuses before connecting, pins the checked address, re-checks redirects, caps bytes and time.

A resolver seam answers DNS; a connect spy (httpx.MockTransport) records every connection attempt, so
nothing here ever opens a connection outside loopback.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest

from server.io.url_guard import UrlFetchFailed, UrlGuard, UrlRefused

PUBLIC = "93.184.215.14"


class Resolver:
    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class ConnectSpy(httpx.AsyncBaseTransport):
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses) or [httpx.Response(200, content=b"image")]
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


def guard(resolver: Resolver, spy: ConnectSpy, allow_private: bool = False, max_bytes: int = 1000) -> UrlGuard:
    return UrlGuard(allow_private=allow_private, timeout=2, max_bytes=max_bytes, resolver=resolver, transport=spy)


BLOCKED = [
    "127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
    "0.0.0.0", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "192.0.2.1",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_answers_are_refused_before_connecting(address: str) -> None:
    spy = ConnectSpy()
    with pytest.raises(UrlRefused, match="not allowed") as refused:
        asyncio.run(guard(Resolver([address]), spy).get("http://images.example/cat.png"))
    assert spy.requests == []
    assert refused.value.reason == ("the address is not allowed (private or loopback; "
                                    "set SDGATE_ALLOW_PRIVATE_URLS=1 to allow your own network)")


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/", "http://127.0.0.1/",
                                 "http://[::ffff:7f00:1]/"])
def test_ip_literals_are_checked_without_dns(url: str) -> None:
    resolver, spy = Resolver([PUBLIC]), ConnectSpy()
    with pytest.raises(UrlRefused):
        asyncio.run(guard(resolver, spy).get(url))
    assert resolver.calls == [] and spy.requests == []


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    spy = ConnectSpy()
    with pytest.raises(UrlRefused):
        asyncio.run(guard(Resolver([PUBLIC, "10.0.0.7"]), spy).get("http://images.example/a.png"))
    assert spy.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://images.example/a.png", "gopher://x/", "javascript:alert(1)",
                                 "http:///nohost", "http://images.example:99999/"])
def test_only_http_and_https_urls(url: str) -> None:
    spy = ConnectSpy()
    with pytest.raises(UrlRefused):
        asyncio.run(guard(Resolver([PUBLIC]), spy, allow_private=True).get(url))
    assert spy.requests == []


def test_dns_rebinding_cannot_move_the_connection() -> None:
    """The resolver answers public, then private: we resolve once and connect to the address we checked."""
    resolver = Resolver([PUBLIC], ["127.0.0.1"])
    spy = ConnectSpy()
    assert asyncio.run(guard(resolver, spy).get("http://images.example:8080/cat.png?x=1")) == b"image"
    assert resolver.calls == ["images.example"]
    (request,) = spy.requests
    assert request.url.host == PUBLIC and request.url.port == 8080 and request.url.query == b"x=1"
    assert request.headers["host"] == "images.example:8080"


def test_https_keeps_the_name_for_tls() -> None:
    spy = ConnectSpy()
    asyncio.run(guard(Resolver([PUBLIC]), spy).get("https://user:pw@images.example/cat.png"))
    (request,) = spy.requests
    assert request.url.host == PUBLIC and request.extensions["sni_hostname"] == "images.example"
    assert request.headers["host"] == "images.example"  # userinfo is never forwarded


def test_every_redirect_hop_is_checked() -> None:
    resolver = Resolver([PUBLIC], ["10.0.0.5"])
    spy = ConnectSpy(httpx.Response(302, headers={"location": "http://internal.example/admin"}))
    with pytest.raises(UrlRefused):
        asyncio.run(guard(resolver, spy).get("http://images.example/a.png"))
    assert len(spy.requests) == 1 and resolver.calls == ["images.example", "internal.example"]


def test_redirects_are_bounded() -> None:
    spy = ConnectSpy(httpx.Response(301, headers={"location": "/again"}))
    with pytest.raises(UrlRefused, match="too many redirects"):
        asyncio.run(guard(Resolver([PUBLIC]), spy).get("http://images.example/a.png"))
    assert len(spy.requests) == 4


def test_byte_cap_is_enforced_while_streaming() -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x" * 100

    declared = ConnectSpy(httpx.Response(200, headers={"content-length": "5000"}, content=b"x" * 5000))
    streamed = ConnectSpy(httpx.Response(200, content=endless()))
    for spy in (declared, streamed):
        with pytest.raises(UrlRefused, match="larger than 1000 bytes"):
            asyncio.run(guard(Resolver([PUBLIC]), spy).get("http://images.example/big.png"))


def test_allow_private_lifts_only_the_address_rule() -> None:
    spy = ConnectSpy()
    assert asyncio.run(guard(Resolver(["10.0.0.9"]), spy, allow_private=True).get("http://nas.local/a.png")) == b"image"
    with pytest.raises(UrlRefused):
        asyncio.run(guard(Resolver(["10.0.0.9"]), spy, allow_private=True).get("file:///etc/passwd"))


def test_read_timeout_on_a_server_that_never_answers() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    slow = UrlGuard(allow_private=True, timeout=0.5, max_bytes=1000)
    try:
        with pytest.raises(UrlFetchFailed) as failed:
            asyncio.run(slow.get(f"http://127.0.0.1:{listener.getsockname()[1]}/hang"))
        assert failed.value.reason == "timed out after 0.5 s"
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_webhook_post_is_pinned_and_not_redirected() -> None:
    spy = ConnectSpy(httpx.Response(307, headers={"location": "http://10.0.0.1/"}))
    status = asyncio.run(guard(Resolver([PUBLIC]), spy).post("https://hooks.example/in", b"{}", {"X-A": "1"}))
    assert status == 307 and len(spy.requests) == 1 and spy.requests[0].url.host == PUBLIC


class FailingResolver:
    async def __call__(self, host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_failures_carry_a_reason_a_client_can_act_on() -> None:
    spy = ConnectSpy(httpx.Response(404, content=b"<h1>our private page</h1>"))
    with pytest.raises(UrlFetchFailed) as not_found:
        asyncio.run(guard(Resolver([PUBLIC]), spy).get("http://images.example/gone.png"))
    assert not_found.value.reason == "the server answered HTTP 404 Not Found"
    dns = UrlGuard(allow_private=False, timeout=2, max_bytes=1000, resolver=FailingResolver(), transport=spy)
    with pytest.raises(UrlFetchFailed) as unresolved:
        asyncio.run(dns.get("http://no-such-host.example/a.png"))
    assert unresolved.value.reason == "the host name was not found (DNS lookup failed)"
    refused = UrlGuard(allow_private=True, timeout=2, max_bytes=1000)
    with pytest.raises(UrlFetchFailed) as closed:
        asyncio.run(refused.get("http://127.0.0.1:9/a.png"))
    assert closed.value.reason == "could not connect to the host (connection refused or unreachable)"


def test_fetch_reports_the_media_type() -> None:
    spy = ConnectSpy(httpx.Response(200, headers={"content-type": "Image/PNG; charset=binary"}, content=b"\x89PNG"))
    fetched = asyncio.run(guard(Resolver([PUBLIC]), spy).fetch("http://images.example/a.png"))
    assert fetched.content == b"\x89PNG" and fetched.content_type == "image/png"
