"""The safety checker: detectors run for real, flagged images are replaced, nothing passes silently."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.postprocess.safety import DiffusersDetector, NudeNetDetector, SafetyFilter
from tests.integration.test_img2img_api import app_client

API = "/api/v6/images/img2img"


def served(client: TestClient, url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(client.get(url.removeprefix("http://testserver")).content))).astype(int)


@pytest.fixture
def strict_client(tiny_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The tiny diffusers checker with a threshold shift that flags everything it sees."""
    with app_client(tiny_dir, tmp_path, safety_backend="diffusers", safety_checker_path=tiny_dir / "safety-checker",
                    safety_threshold_shift=100.0) as client:
        yield client


def test_black_replacement(strict_client: TestClient, body: dict) -> None:
    answer = strict_client.post(API, json={**body, "safety_checker_type": "black", "samples": 2}).json()
    assert answer["nsfw_content_detected"] is True
    for url in answer["output"]:
        assert served(strict_client, url).max() == 0


def test_pixelate_replacement(strict_client: TestClient, body: dict) -> None:
    answer = strict_client.post(API, json={**body, "safety_checker_type": "pixelate"}).json()
    image = served(strict_client, answer["output"][0])
    # 32 px split into 8 blocks: every 4x4 block is one flat colour.
    blocks = image.reshape(8, 4, 8, 4, 3)
    assert (blocks.max(axis=(1, 3)) == blocks.min(axis=(1, 3))).all()


def test_blur_replacement(strict_client: TestClient, body: dict, client: TestClient) -> None:
    flagged = served(strict_client, strict_client.post(API, json={**body, "safety_checker_type": "blur"}).json()["output"][0])
    original = served(client, client.post(API, json=body).json()["output"][0])
    detail = lambda img: np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean()  # noqa: E731
    assert detail(flagged) < detail(original) / 5


def test_sensitive_content_text_replacement(strict_client: TestClient, body: dict) -> None:
    answer = strict_client.post(API, json={**body, "init_image": body["init_image"].replace("init.png", "init-40x36.png")}).json()
    image = served(strict_client, answer["output"][0])
    assert image.shape[:2] == (32, 40)
    background = (image == [40, 40, 40]).all(axis=2).mean()
    assert 0.5 < background < 1.0  # a plain card with a lighter notice on it


def test_notice_is_readable_at_full_size() -> None:
    """At a real output size the notice spans most of the width, in light text on a dark card."""
    from pipelines.postprocess.safety import REPLACEMENTS

    card = np.asarray(REPLACEMENTS["sensitive_content_text"](Image.new("RGB", (512, 512), (255, 0, 0)))).astype(int)
    text_columns = np.where((card > 150).all(axis=2).any(axis=0))[0]
    assert text_columns.max() - text_columns.min() > 512 * 0.6
    assert not (card == [255, 0, 0]).all(axis=2).any()


def test_only_flagged_samples_are_replaced(tiny_dir: Path) -> None:
    detector = DiffusersDetector(tiny_dir / "safety-checker")
    images = [Image.new("RGB", (32, 32), (250, 20, 20)), Image.new("RGB", (32, 32), (20, 20, 250))]
    low, high = sorted(detector.scores(images))
    assert low < high
    shift = -(low + high) / 2  # between the two scores: exactly one image crosses zero
    replaced, flags = SafetyFilter(detector, shift).apply(images, "black")
    assert sorted(flags) == [False, True]
    for image, out, flagged in zip(images, replaced, flags):
        assert (out is image) is (not flagged)


def test_unflagged_output_is_untouched(tiny_dir: Path, tmp_path: Path, body: dict, client: TestClient) -> None:
    with app_client(tiny_dir, tmp_path, safety_backend="diffusers", safety_checker_path=tiny_dir / "safety-checker") as app:
        checked = app.post(API, json=body).json()
        unchecked = app.post(API, json={**body, "safety_checker": "no"}).json()
        assert checked["nsfw_content_detected"] is False
        assert np.array_equal(served(app, checked["output"][0]), served(app, unchecked["output"][0]))


def test_nudenet_runs_offline_and_passes_a_benign_image(client: TestClient, body: dict) -> None:
    assert client.app.state.sdgate.safety.detector.name == "nudenet"  # the default when installed
    answer = client.post(API, json={**body, "samples": 2}).json()
    assert answer["status"] == "success" and answer["nsfw_content_detected"] is False
    image = Image.fromarray(served(client, answer["output"][0]).astype(np.uint8))
    assert NudeNetDetector().scores([image.resize((320, 320))])[0] < 0


def test_no_detector_means_a_clear_error_never_a_silent_pass(
    tiny_dir: Path, tmp_path: Path, body: dict, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), app_client(tiny_dir, tmp_path, safety_backend="none") as app:
        refused = app.post(API, json=body).json()
        assert refused["status"] == "error" and refused["message"].startswith("safety_checker is on but")
        assert app.post(API, json={**body, "safety_checker": "no"}).json()["status"] == "success"
    assert "no NSFW detector available" in caplog.text
