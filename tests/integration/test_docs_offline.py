"""/docs and /redoc work on an air-gapped host: every script, stylesheet and icon they load comes from sdgate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.http.app import create_app
from tests.conftest import make_settings

CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


def referenced_urls(html: str) -> list[str]:
    """What a browser fetches for the page: src/href attributes, ReDoc's spec-url and Swagger UI's `url:`."""
    urls = re.findall(r'\b(?:src|href|spec-url)="([^"]*)"', html)
    urls += re.findall(r"\burl: '([^']*)'", html)
    return urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_same_origin_assets(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "https://" not in html and "http://" not in html  # no CDN, no Google Fonts, no validator badge
    urls = referenced_urls(html)
    assert "/openapi.json" in urls
    assets = [url for url in urls if url != "/openapi.json"]
    assert any(url.endswith(".js") for url in assets), urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        expected = CONTENT_TYPES[url[url.rindex("."):]]
        assert asset.headers["content-type"].split(";")[0] in expected, (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url


def test_the_assets_are_the_real_swagger_ui_and_redoc(client: TestClient) -> None:
    html = client.get("/docs").text
    script = next(url for url in referenced_urls(html) if url.endswith(".js"))
    assert "SwaggerUIBundle" in client.get(script).text
    stylesheet = next(url for url in referenced_urls(html) if url.endswith(".css"))
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", client.get(stylesheet).text)  # no remote fonts or images
    redoc = next(url for url in referenced_urls(client.get("/redoc").text) if url.endswith(".js"))
    assert "Redoc" in client.get(redoc).text
    assert client.get("/openapi.json").json()["info"]["title"] == "sdgate"
    assert client.get("/docs/oauth2-redirect").status_code == 200
    schema = client.get("/openapi.json").json()
    assert not any(path.startswith(("/docs", "/redoc")) for path in schema["paths"])


def test_docs_behind_a_path_prefix_point_under_it(tiny_dir: Path, tmp_path: Path) -> None:
    """Behind a proxy that strips /sdgate (uvicorn --root-path /sdgate), the page asks for /sdgate/... URLs."""
    # No `with`: the lifespan (models, job store) is not started; the docs need none of it.
    prefixed = TestClient(create_app(make_settings(tiny_dir, tmp_path)), root_path="/sdgate")
    urls = referenced_urls(prefixed.get("/sdgate/docs").text)
    assert urls and all(url.startswith("/sdgate/") for url in urls), urls
    for url in urls:
        assert prefixed.get(url).status_code == 200, url
