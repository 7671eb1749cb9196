"""The playground page, driven in headless Chromium (Debian's package, through Playwright) against a live server."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, Request, sync_playwright

from tests.conftest import LiveServer, free_port, png_bytes, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandboxed root container with no network beyond loopback (see the env notes).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def processing_server(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """SYNC_TIMEOUT=0: every job answers "processing" first, so the page must poll fetch."""
    data = tmp_path_factory.mktemp("playground")
    server = start_server(["--config", str(tiny_dir / "models.yaml"), "--data-dir", str(data)],
                          {"SDGATE_SYNC_TIMEOUT": "0", "SDGATE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"},
                          free_port(), data / "server.log")
    yield server
    server.process.terminate()
    server.process.wait(timeout=60)


@contextmanager
def playground_page(server: LiveServer, home: Path) -> Iterator[Page]:
    """A fresh Chromium on the playground, key typed and tiny-sd15 picked."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={"HOME": str(home)})
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720})
            page.goto(server.url + "/")
            page.fill("#key", "browser-key")
            page.wait_for_selector("#model option[value='tiny-sd15']", state="attached")
            page.select_option("#model", "tiny-sd15")
            yield page
        finally:
            browser.close()


def is_endpoint(path: str) -> Callable[[Request], bool]:
    """A predicate for page.expect_request: the POST to this API path."""
    return lambda request: request.method == "POST" and request.url.endswith(path)


def test_playground_generates_an_image_in_a_real_browser(processing_server: LiveServer, tmp_path: Path) -> None:
    init = tmp_path / "init.png"
    init.write_bytes(png_bytes((64, 48)))
    shots = Path(os.environ.get("SDGATE_SCREENSHOT_DIR", tmp_path))
    with playground_page(processing_server, tmp_path) as page:
        # img2img is the default mode: init image and strength shown, the text2img size hidden.
        assert page.is_checked("#mode-img2img")
        assert page.is_visible("#file") and page.is_visible("#strength")
        assert not page.is_visible("#width") and not page.is_visible("#height")
        page.set_input_files("#file", str(init))
        page.fill("#prompt", "a red cat on a sofa")
        page.fill("#steps", "12")
        page.fill("#seed", "42")
        page.fill("#samples", "2")
        with page.expect_request(is_endpoint("/api/v6/images/img2img")) as submitted:
            page.click("#submit")
        page.wait_for_selector("#results img:nth-child(2)", timeout=60_000)
        page.wait_for_function("[...document.querySelectorAll('#results img')].every(i => i.naturalWidth > 0)")
        sizes = page.eval_on_selector_all("#results img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        status = page.text_content("#status") or ""
        meta = page.text_content("#meta") or ""
        page.screenshot(path=str(shots / "playground.png"), full_page=True)
        body = submitted.value.post_data_json
    assert body["init_image"].startswith("data:image/png;base64,") and body["strength"] == "0.7"
    assert "width" not in body and "height" not in body
    assert sizes == [[64, 48], [64, 48]]
    assert status.startswith("Done: job") and "seed 42" in status
    assert '"model_id": "tiny-sd15"' in meta
    # The page polled fetch: the server saw the job answered "processing" first, then fetched.
    log = processing_server.log.read_text()
    assert "POST /api/v6/images/fetch/" in log and "browser-key" not in log


def test_playground_text2img_mode_in_a_real_browser(processing_server: LiveServer, tmp_path: Path) -> None:
    with playground_page(processing_server, tmp_path) as page:
        page.check("#mode-text2img")
        # Text mode: no init image or strength; the size inputs appear, defaulting to 512.
        assert not page.is_visible("#file") and not page.is_visible("#url") and not page.is_visible("#strength")
        assert page.input_value("#width") == "512" and page.input_value("#height") == "512"
        # An error answer's message shows the same way as in img2img mode.
        page.fill("#prompt", "   ")
        with page.expect_request(is_endpoint("/api/v6/images/text2img")):
            page.click("#submit")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Error: ')")
        assert "prompt" in (page.text_content("#status") or "")
        page.fill("#prompt", "a red fox in snow")
        page.fill("#width", "64")
        page.fill("#height", "64")
        page.fill("#steps", "4")
        page.fill("#seed", "7")
        with page.expect_request(is_endpoint("/api/v6/images/text2img")) as submitted:
            page.click("#submit")
        page.wait_for_function("(() => { const i = document.querySelector('#results img');"
                               " return i !== null && i.complete && i.naturalWidth > 0; })()", timeout=60_000)
        sizes = page.eval_on_selector_all("#results img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        status = page.text_content("#status") or ""
        body = submitted.value.post_data_json
    assert body["width"] == "64" and body["height"] == "64" and body["prompt"] == "a red fox in snow"
    assert "init_image" not in body and "strength" not in body
    assert sizes == [[64, 64]]
    assert status.startswith("Done: job") and "seed 7" in status
    log = processing_server.log.read_text()
    assert "POST /api/v6/images/text2img" in log and "POST /api/v6/images/fetch/" in log


def test_playground_inpaint_mode_with_a_drawn_mask(processing_server: LiveServer, tmp_path: Path) -> None:
    init = tmp_path / "init.png"
    init.write_bytes(png_bytes((64, 48)))
    with playground_page(processing_server, tmp_path) as page:
        page.check("#mode-inpaint")
        # Inpaint mode: init image, strength and the mask inputs; no size.
        assert page.is_visible("#file") and page.is_visible("#strength") and page.is_visible("#mask-file")
        assert not page.is_visible("#width") and not page.is_visible("#mask-canvas")
        page.set_input_files("#file", str(init))
        # The canvas takes the init image's size once its preview loads, and is shown scaled over it.
        page.wait_for_function("(() => { const c = document.getElementById('mask-canvas');"
                               " return c.width === 64 && c.height === 48 && c.offsetWidth > 64; })()")
        box = page.locator("#mask-canvas").bounding_box()
        assert box is not None
        # Drag across the middle band of the image, then press "Submit" with nothing uploaded as a mask.
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5, steps=8)
        page.mouse.up()
        page.fill("#steps", "4")
        page.fill("#seed", "11")
        with page.expect_request(is_endpoint("/api/v6/images/inpaint")) as submitted:
            page.click("#submit")
        page.wait_for_function("(() => { const i = document.querySelector('#results img');"
                               " return i !== null && i.complete && i.naturalWidth > 0; })()", timeout=60_000)
        sizes = page.eval_on_selector_all("#results img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        status = page.text_content("#status") or ""
        meta = page.text_content("#meta") or ""
        body = submitted.value.post_data_json
    assert body["model_id"] == "tiny-sd15" and body["base64"] == "yes" and body["strength"] == "0.7"
    assert body["init_image"].startswith("data:image/png;base64,")
    assert body["mask_image"].startswith("data:image/png;base64,")
    mask = Image.open(io.BytesIO(base64.b64decode(body["mask_image"].split(",", 1)[1]))).convert("L")
    assert mask.size == (64, 48)
    # White where the drag went (the middle row), black at the corners.
    assert mask.getpixel((32, 24)) == 255 and mask.getpixel((0, 0)) == 0 and mask.getpixel((63, 47)) == 0
    assert sizes == [[64, 48]]
    assert status.startswith("Done: job") and "seed 11" in status
    assert '"inpaint_mode": "blend"' in meta and '"model_id": "tiny-sd15"' in meta
    assert "POST /api/v6/images/inpaint" in processing_server.log.read_text()


def test_playground_realtime_text2img_in_a_real_browser(processing_server: LiveServer, tmp_path: Path) -> None:
    with playground_page(processing_server, tmp_path) as page:
        page.check("#realtime")
        page.check("#mode-text2img")
        # Realtime: no model or scheduler to pick; a note says the server's realtime model runs.
        assert not page.is_visible("#model") and not page.is_visible("#scheduler")
        assert "realtime model" in (page.text_content("#realtime-note") or "") and page.is_visible("#realtime-note")
        page.fill("#prompt", "a red fox in snow")
        page.fill("#width", "64")
        page.fill("#height", "64")
        page.fill("#steps", "2")
        with page.expect_request(is_endpoint("/api/v6/realtime/text2img")) as submitted:
            page.click("#submit")
        page.wait_for_function("(() => { const i = document.querySelector('#results img');"
                               " return i !== null && i.complete && i.naturalWidth > 0; })()", timeout=60_000)
        sizes = page.eval_on_selector_all("#results img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        status = page.text_content("#status") or ""
        meta = page.text_content("#meta") or ""
        body = submitted.value.post_data_json
        # Unchecking Realtime brings the model picker back.
        page.uncheck("#realtime")
        assert page.is_visible("#model") and not page.is_visible("#realtime-note")
    assert "model_id" not in body and "scheduler" not in body and body["width"] == "64"
    assert sizes == [[64, 64]]
    assert status.startswith("Done: job")
    assert '"model_id": "tiny-realtime"' in meta
    # It polled the fetch_result of the realtime answer.
    assert "POST /api/v6/realtime/fetch/" in processing_server.log.read_text()
