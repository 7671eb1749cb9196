"""modelslab-py (the official SDK) against a real `sdgate serve`: Community.inpainting and the three Realtime
methods, each answered at once and each through the SDK's own fetch loop.

The SDK's fetch posts to the base_url of its API object + "fetch/{id}": Community -> /api/v6/images/fetch/{id},
Realtime -> /api/v6/realtime/fetch/{id}; sdgate serves both. The Realtime schemas default width and height to
512, so text_to_image sends 64x64 explicitly (img2img and inpaint follow init_image whatever is sent).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from modelslab_py.core.apis.base import BaseAPI
from modelslab_py.core.apis.community import Community
from modelslab_py.core.apis.realtime import Realtime
from modelslab_py.core.client import Client
from modelslab_py.schemas.community import Inpainting
from modelslab_py.schemas.realtime import RealtimeImage2ImageSchema, RealtimeInpaintingSchema, RealtimeText2ImageSchema
from PIL import Image

from tests.conftest import ImageServer, LiveServer, b64_png, free_port, start_server
from tests.e2e.test_clients import logged, png_size


def mask_png(size: tuple[int, int] = (32, 32)) -> bytes:
    """Black (keep) with a white (repaint) square in the middle."""
    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    """One SDK call: which API object, how to call it, where it posts, where its fetch posts, what comes out."""

    api: type[BaseAPI]
    call: Callable[[Any, ImageServer], dict]
    path: str
    fetch_path: str
    size: tuple[int, int]
    model_id: str


def _inpainting(api: Community, images: ImageServer) -> dict:
    return api.inpainting(Inpainting(
        prompt="a blue square", model_id="tiny-sd15", init_image=images.url("init.png"),
        mask_image=images.url("sdk-mask.png"), num_inference_steps=4, seed=21, strength=0.7))


def _inpainting_base64(api: Community, images: ImageServer) -> dict:
    mask = base64.b64encode(mask_png()).decode()
    return api.inpainting(Inpainting(
        prompt="a blue square", model_id="tiny-sd15", init_image=b64_png(), mask_image=mask, base64=True,
        num_inference_steps=4, seed=22, strength=0.7))


def _rt_text(api: Realtime, images: ImageServer) -> dict:
    return api.text_to_image(RealtimeText2ImageSchema(prompt="a red cube", width=64, height=64, seed=23))


def _rt_img2img(api: Realtime, images: ImageServer) -> dict:
    return api.image_to_image(RealtimeImage2ImageSchema(
        prompt="make it blue", init_image=images.url("init.png"), strength=0.7, seed=24))


def _rt_inpaint(api: Realtime, images: ImageServer) -> dict:
    return api.inpainting(RealtimeInpaintingSchema(
        prompt="a blue square", init_image=images.url("init.png"), mask_image=images.url("sdk-mask.png"),
        strength=0.7, seed=25))


IMAGES, REALTIME = "/api/v6/images/fetch", "/api/v6/realtime/fetch"
CASES = {
    "community-inpainting-urls": Case(Community, _inpainting, "/api/v6/images/inpaint", IMAGES, (32, 32), "tiny-sd15"),
    "community-inpainting-base64": Case(Community, _inpainting_base64, "/api/v6/images/inpaint", IMAGES, (32, 32),
                                        "tiny-sd15"),
    "realtime-text2img": Case(Realtime, _rt_text, "/api/v6/realtime/text2img", REALTIME, (64, 64), "tiny-realtime"),
    "realtime-img2img": Case(Realtime, _rt_img2img, "/api/v6/realtime/img2img", REALTIME, (32, 32), "tiny-realtime"),
    "realtime-inpaint": Case(Realtime, _rt_inpaint, "/api/v6/realtime/inpaint", REALTIME, (32, 32), "tiny-realtime"),
}


def sdk(cls: type[BaseAPI], server: LiveServer) -> Any:
    client = Client(api_key="sdk-key", fetch_retry=120, fetch_timeout=1)
    client.base_url = f"{server.url}/api/"  # before the API object, which copies it
    return cls(client=client)


@pytest.fixture(scope="module")
def images(image_server: ImageServer) -> ImageServer:
    image_server.add("sdk-mask.png", mask_png())
    return image_server


@pytest.fixture(scope="module")
def processing_server(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """SDGATE_SYNC_TIMEOUT=0: every job answers "processing" first, so the SDK must fetch."""
    data = tmp_path_factory.mktemp("sdk-processing")
    server = start_server(["--config", str(tiny_dir / "models.yaml"), "--data-dir", str(data)],
                          {"SDGATE_SYNC_TIMEOUT": "0", "SDGATE_ALLOW_PRIVATE_URLS": "1", "SDGATE_DEVICE": "cpu",
                           "OMP_NUM_THREADS": "1"},
                          free_port(), data / "server.log")
    yield server
    server.process.terminate()
    server.process.wait(timeout=60)


def check_success(answer: dict, case: Case, server: LiveServer) -> None:
    assert answer["status"] == "success", answer
    link = answer["output"][0]
    image = httpx.get(link, timeout=30)
    assert image.status_code == 200
    if link.endswith(".base64"):  # base64=yes: each link is a text file holding the PNG, as hosted
        data = base64.b64decode(image.text)
    else:
        assert image.headers["content-type"] == "image/png"
        data = image.content
    assert png_size(data) == case.size
    assert answer["meta"]["model_id"] == case.model_id
    if case.path.endswith("inpaint"):
        assert answer["meta"]["inpaint_mode"] == "blend"  # tiny-sd15 and tiny-realtime have 4-channel UNets


@pytest.mark.parametrize("name", CASES)
def test_sdk_answered_at_once(name: str, live_server: LiveServer, images: ImageServer) -> None:
    case = CASES[name]
    answer = case.call(sdk(case.api, live_server), images)
    check_success(answer, case, live_server)
    assert logged(live_server, f"POST {case.path}", answer["id"])


@pytest.mark.parametrize("name", CASES)
def test_sdk_through_its_fetch(name: str, processing_server: LiveServer, images: ImageServer) -> None:
    case = CASES[name]
    api = sdk(case.api, processing_server)
    answer = case.call(api, images)
    assert answer["status"] == "processing" and answer["output"] == [], answer
    assert answer["fetch_result"] == f"{processing_server.url}{case.fetch_path}/{answer['id']}"
    fetched = api.fetch(str(answer["id"]))
    check_success(fetched, case, processing_server)
    assert fetched["id"] == answer["id"] and fetched["output"] == answer["future_links"]
    # The SDK's fetch posted to its API family's fetch path, which sdgate served.
    assert logged(processing_server, f"POST {case.path}", answer["id"])
    assert logged(processing_server, f"POST {case.fetch_path}/{answer['id']}", answer["id"])
