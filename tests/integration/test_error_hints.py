"""Error messages say how to fix the request: the hosted wording first, then what was wrong."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ImageServer, b64_png
from tests.integration.test_img2img_api import API, app_client, is_error
from tests.integration.test_inpaint_api import request as inpaint_request

FETCH = "Unable to fetch image from provided URL"
REFUSED = "init image must be a valid url when base64 is a representation of false"
BASE64_HINT = '; send "base64": "yes" to pass the image as base64'
NO_KEY = 'Invalid API key: no key was sent (put "key" in the JSON body, or send Authorization: Bearer <key>)'


def message(answer: dict) -> str:
    assert is_error(answer), answer
    return answer["message"]


@pytest.mark.parametrize(
    "value, expected",
    [
        (b64_png(), REFUSED + BASE64_HINT),
        ("data:image/png;base64," + b64_png(), REFUSED + BASE64_HINT),
        (b64_png()[:60] + "\n" + b64_png()[60:], REFUSED + BASE64_HINT),  # wrapped base64
        ("not-a-url", REFUSED + "; the value is neither an http(s) URL nor base64"),
        ("cat.png", REFUSED + "; the value is neither an http(s) URL nor base64"),
        ("ftp://example.com/a.png", REFUSED + "; only http:// and https:// URLs are fetched"),
    ],
)
def test_base64_without_the_flag_says_how_to_send_it(client: TestClient, body: dict, value: str, expected: str) -> None:
    assert message(client.post(API, json={**body, "init_image": value, "base64": "no"}).json()) == expected


def test_the_hint_names_the_field(client: TestClient, image_server: ImageServer) -> None:
    mask_inline = inpaint_request(base64="no", init_image=image_server.url("init.png"))
    answer = client.post("/api/v6/images/inpaint", json=mask_inline).json()
    assert message(answer) == REFUSED.replace("init image", "mask image") + BASE64_HINT


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """/slow answers after 3 s; /page answers an HTML page; anything else a 503."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/slow":
            time.sleep(3)
        body, kind, status = b"<html>a gallery page</html>", "text/html; charset=utf-8", 200
        if self.path not in ("/slow", "/page"):
            body, kind, status = b"busy", "text/plain", 503
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        try:
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the slow answer's client has given up by now

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_failures_name_the_cause(tiny_dir: Path, tmp_path: Path, body: dict, image_server: ImageServer,
                                       odd_server: str) -> None:
    big = image_server.add("big.png", b"\x89PNG" + bytes(5000))
    cases = {
        image_server.url("missing.png"): f"{FETCH}: the server answered HTTP 404 Not Found",
        f"{odd_server}/busy.png": f"{FETCH}: the server answered HTTP 503 Service Unavailable",
        f"{odd_server}/slow": f"{FETCH}: timed out after 0.5 s",
        f"{odd_server}/page": f"{FETCH}: the URL answered text/html, not an image",
        "http://no-such-host.invalid/a.png": f"{FETCH}: the host name was not found (DNS lookup failed)",
        big: f"{FETCH}: the image is larger than 2000 bytes",
    }
    with app_client(tiny_dir, tmp_path, fetch_timeout=0.5, max_download_bytes=2000) as app:
        for url, expected in cases.items():
            assert message(app.post(API, json={**body, "init_image": url}).json()) == expected, url
        closed = message(app.post(API, json={**body, "init_image": "http://127.0.0.1:9/a.png"}).json())
        assert closed == f"{FETCH}: could not connect to the host (connection refused or unreachable)"
        # A file named .png that is not a picture is still the hosted decode error, not a fetch error.
        garbage = message(app.post(API, json={**body, "init_image": image_server.url("not-an-image.png")}).json())
        assert garbage.startswith("init_image is not a valid image")


def test_a_private_address_names_the_setting(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, allow_private_urls=False) as guarded:
        answer = guarded.post(API, json={**body, "init_image": "http://127.0.0.1/a.png"}).json()
    assert message(answer) == (f"{FETCH}: the address is not allowed (private or loopback; "
                               "set SDGATE_ALLOW_PRIVATE_URLS=1 to allow your own network)")


def test_a_body_that_is_not_json_says_what_it_is(client: TestClient, body: dict) -> None:
    multipart = client.post(API, data={"prompt": "a cat"}, files={"init_image": ("a.png", b"\x89PNG")})
    assert message(multipart.json()) == "Invalid JSON body: the body is multipart/form-data; send a JSON object"
    form = client.post(API, data={"prompt": "a cat", "key": "k"})
    assert message(form.json()) == "Invalid JSON body: the body is application/x-www-form-urlencoded; send a JSON object"
    broken = client.post(API, content=b'{"prompt": 1 "key": "k"}', headers={"content-type": "application/json"})
    assert message(broken.json()) == "Invalid JSON body: Expecting ',' delimiter at line 1 column 14"
    two_lines = client.post(API, content=b'{"prompt": "a",\n "key": }')
    assert message(two_lines.json()) == "Invalid JSON body: Expecting value at line 2 column 9"
    array = client.post(API, json=[body])
    assert message(array.json()) == "Invalid JSON body: the body is a JSON array; send a JSON object"
    assert message(client.post(API, content=b"null").json()) == "Invalid JSON body: the body is JSON null; send a JSON object"
    assert message(client.post(API).json()) == "Invalid JSON body: the body is empty; send a JSON object"


def test_json_without_a_content_type_is_accepted(client: TestClient, body: dict) -> None:
    raw = json.dumps({**body, "model_id": "no-such-model"}).encode()
    answer = client.post(API, content=raw, headers={"content-type": "text/plain"}).json()
    assert message(answer) == "Model not found: no-such-model"  # parsed: it got as far as the model lookup


def test_a_missing_key_says_where_to_put_it_and_a_wrong_one_says_nothing_more(tiny_dir: Path, tmp_path: Path,
                                                                             body: dict) -> None:
    probe = {**body, "model_id": "no-such-model"}
    with app_client(tiny_dir, tmp_path, api_keys="k1", key_failures_per_minute=100) as keyed:
        for missing in ({k: v for k, v in probe.items() if k != "key"}, {**probe, "key": ""}, {**probe, "key": None}):
            assert message(keyed.post(API, json=missing).json()) == NO_KEY
        assert message(keyed.post(API, json={**probe, "key": "wrong-secret"}).json()) == "Invalid API key"
        bearer = keyed.post(API, json={**probe, "key": None}, headers={"Authorization": "Bearer wrong-secret"})
        assert message(bearer.json()) == "Invalid API key"
        assert message(keyed.post(API, json={**probe, "key": "k1"}).json()) == "Model not found: no-such-model"
        assert message(keyed.post("/api/v6/images/fetch/1").json()) == NO_KEY  # empty body, no header
        assert message(keyed.get("/api/v5/images/fetch/1").json()) == NO_KEY
        assert message(keyed.get("/api/v5/images/fetch/1", headers={"key": "nope"}).json()) == "Invalid API key"
