"""The playground page, driven in headless Chromium (Debian's package, through Playwright) against a live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

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


def test_playground_generates_an_image_in_a_real_browser(processing_server: LiveServer, tmp_path: Path) -> None:
    init = tmp_path / "init.png"
    init.write_bytes(png_bytes((64, 48)))
    shots = Path(os.environ.get("SDGATE_SCREENSHOT_DIR", tmp_path))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             env={"HOME": str(tmp_path)})
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(processing_server.url + "/")
        page.fill("#key", "browser-key")
        page.wait_for_selector("#model option[value='tiny-sd15']", state="attached")
        page.select_option("#model", "tiny-sd15")
        page.set_input_files("#file", str(init))
        page.fill("#prompt", "a red cat on a sofa")
        page.fill("#steps", "12")
        page.fill("#seed", "42")
        page.fill("#samples", "2")
        page.click("#submit")
        page.wait_for_selector("#results img:nth-child(2)", timeout=60_000)
        page.wait_for_function("[...document.querySelectorAll('#results img')].every(i => i.naturalWidth > 0)")
        sizes = page.eval_on_selector_all("#results img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        status = page.text_content("#status") or ""
        meta = page.text_content("#meta") or ""
        page.screenshot(path=str(shots / "playground.png"))
        browser.close()
    assert sizes == [[64, 48], [64, 48]]
    assert status.startswith("Done: job") and "seed 42" in status
    assert '"model_id": "tiny-sd15"' in meta
    # The page polled fetch: the server saw the job answered "processing" first, then fetched.
    log = processing_server.log.read_text()
    assert "POST /api/v6/images/fetch/" in log and "browser-key" not in log
