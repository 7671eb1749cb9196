"""Third-party clients against a real `sdgate serve`: text2img and the v3 / v7 paths as each client really calls them.

- modelslab-py (official SDK): Community.text_to_image, answered at once and through its fetch loop.
- stablediffusionapi 0.0.5 (2023 client): v3/text2img and v3/dreambooth with an empty body, the fields in the
  query string and the key in a header; its "processing" path sleeps `eta` and fetches with an absolute-form
  request line. It always asks for 512x512 at the server's default steps, too slow for tiny-sd15 on CPU (its
  attention runs at full latent resolution and its VAE only halves the side), so those servers make a
  512-friendly tiny model the default. Its Community module's "processing" path cannot work against any server
  (a local variable named fetch_result shadows the function it then calls), so only its answered-at-once path
  is tested.
- modelslab-cli (official CLI, a Go binary): v7 text-to-image, image-to-image and fetch.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import StableDiffusionAPI
import StableDiffusionAPI.Community as SdapiCommunity
import torch
from modelslab_py.core.apis.community import Community
from modelslab_py.core.client import Client
from modelslab_py.schemas.community import Text2Image
from PIL import Image

from tests.conftest import ImageServer, LiveServer, free_port, start_server

KEY = "clients-key"
FAST_MODEL = "tiny-512"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC), data[:40]
    return Image.open(io.BytesIO(data)).size


def logged(server: LiveServer, request_line: str, job_id: object) -> bool:
    """Whether the access log has `request_line` answered 200 for job `job_id`."""
    return any(f"{request_line} 200 " in line and line.endswith(f"job={job_id}")
               for line in server.log.read_text().splitlines())


def stop(server: LiveServer) -> None:
    server.process.terminate()
    server.process.wait(timeout=60)


# --- servers whose default model renders 512x512 at 31 steps in a few seconds on one CPU core ---


def _make_fast_512_model(tiny_dir: Path, out: Path) -> None:
    """tiny-sd15's text encoder, tokenizer and scheduler with a UNet that attends only at 1/4 of the latent side
    and a VAE that divides the side by 8: 512x512 at 31 steps in about 4 s instead of many minutes."""
    from diffusers import AutoencoderKL, StableDiffusionImg2ImgPipeline, UNet2DConditionModel

    base = StableDiffusionImg2ImgPipeline.from_pretrained(str(tiny_dir / "tiny-sd15"), local_files_only=True)
    torch.manual_seed(512)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 64), layers_per_block=1, sample_size=64, in_channels=4, out_channels=4,
        norm_num_groups=32, cross_attention_dim=32, attention_head_dim=8,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 32, 32, 32], down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4, norm_num_groups=32, layers_per_block=1,
        sample_size=512,
    )
    StableDiffusionImg2ImgPipeline(**{**base.components, "unet": unet, "vae": vae}).save_pretrained(
        str(out), safe_serialization=True)


@pytest.fixture(scope="module")
def fast_config(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fast512")
    _make_fast_512_model(tiny_dir, folder / FAST_MODEL)
    config = folder / "models.yaml"
    config.write_text(
        "models:\n"
        f"  {FAST_MODEL}: {{family: sd15, path: {folder / FAST_MODEL}, default: true}}\n"
        f"  tiny-sd15: {{family: sd15, path: {tiny_dir / 'tiny-sd15'}}}\n"
    )
    return config


def _serve(config: Path, data: Path, **env: str) -> LiveServer:
    values = {"SDGATE_ALLOW_PRIVATE_URLS": "1", "SDGATE_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
              "SDGATE_API_KEYS": KEY, **env}
    return start_server(["--config", str(config), "--data-dir", str(data)], values, free_port(), data / "server.log")


@pytest.fixture(scope="module")
def fast_servers(fast_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    """Two servers, started side by side, keys required, tiny-512 the default model: "sync" answers within the
    default 30 s wait, "async" answers "processing" at once (SDGATE_SYNC_TIMEOUT=0)."""
    settings = {"sync": {}, "async": {"SDGATE_SYNC_TIMEOUT": "0"}}
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(_serve, fast_config, tmp_path_factory.mktemp(name), **env)
                   for name, env in settings.items()}
    servers = {name: future.result() for name, future in futures.items() if future.exception() is None}
    failed = [future.exception() for future in futures.values() if future.exception() is not None]
    if failed:
        for server in servers.values():
            stop(server)
        raise failed[0]
    yield servers
    for server in servers.values():
        stop(server)


@pytest.fixture
def sync_server(fast_servers: dict[str, LiveServer]) -> LiveServer:
    return fast_servers["sync"]


@pytest.fixture
def async_server(fast_servers: dict[str, LiveServer]) -> LiveServer:
    return fast_servers["async"]


# --- modelslab-py ---


def sdk(server: LiveServer, key: str = KEY) -> Community:
    client = Client(api_key=key, fetch_retry=120, fetch_timeout=1)
    client.base_url = f"{server.url}/api/"  # before Community(), which copies it
    return Community(client=client)


def sdk_request(seed: int) -> Text2Image:
    return Text2Image(prompt="a red cube", model_id="tiny-sd15", width=64, height=64, samples=1,
                      num_inference_steps=4, seed=seed)


def test_modelslab_py_text_to_image_answered_at_once(live_server: LiveServer) -> None:
    answer = sdk(live_server, "sdk-key").text_to_image(sdk_request(seed=5))
    assert answer["status"] == "success", answer
    image = httpx.get(answer["output"][0], timeout=30)
    assert image.headers["content-type"] == "image/png"
    assert png_size(image.content) == (64, 64)
    meta = answer["meta"]
    assert (meta["model_id"], meta["steps"], meta["seed"], meta["W"], meta["H"]) == ("tiny-sd15", 4, 5, 64, 64)
    assert logged(live_server, "POST /api/v6/images/text2img", answer["id"])


def test_modelslab_py_text_to_image_through_fetch(async_server: LiveServer) -> None:
    api = sdk(async_server)
    answer = api.text_to_image(sdk_request(seed=6))
    assert answer["status"] == "processing" and answer["output"] == [], answer
    assert answer["fetch_result"] == f"{async_server.url}/api/v6/images/fetch/{answer['id']}"
    fetched = api.fetch(str(answer["id"]))
    assert fetched["status"] == "success", fetched
    assert fetched["id"] == answer["id"] and fetched["output"] == answer["future_links"]
    assert png_size(httpx.get(fetched["output"][0], timeout=30).content) == (64, 64)
    assert fetched["meta"]["seed"] == 6


# --- stablediffusionapi 0.0.5 ---


class SdapiRun:
    """Points the client's hard-coded HTTPSConnection("stablediffusionapi.com") at `server` and waits for the
    threads it starts (and the download threads they start) to end; exceptions in them fail the test."""

    def __init__(self, server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.hosts: list[str] = []
        self.errors: list[BaseException] = []
        self.before = set(threading.enumerate())
        real = http.client.HTTPConnection

        def connect(host: str, *args: object, **kwargs: object) -> http.client.HTTPConnection:
            self.hosts.append(host)
            if host == "stablediffusionapi.com":
                return real("127.0.0.1", server.port, timeout=120)
            return real(host, timeout=120)  # the netloc of an output link

        monkeypatch.setattr(http.client, "HTTPSConnection", connect)
        monkeypatch.setattr(threading, "excepthook", lambda args: self.errors.append(args.exc_value))
        StableDiffusionAPI.Key(KEY)

    def wait(self, files: list[Path], output: Callable[[], str], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            running = [t for t in threading.enumerate() if t not in self.before and t.is_alive()]
            if not running:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"client threads still running after {timeout} s:\n{output()}")
            running[0].join(0.2)
        assert not self.errors, f"{self.errors!r}\n{output()}"
        for file in files:
            assert file.exists(), f"{file.name} was not written:\n{output()}"
            assert png_size(file.read_bytes()) == (512, 512)
        # Every download used the host of the server's own output links.
        assert set(self.hosts) <= {"stablediffusionapi.com", f"127.0.0.1:{self.server.port}"}, self.hosts


def test_stablediffusionapi_text2img_and_community(sync_server: LiveServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = SdapiRun(sync_server, monkeypatch)
    plain, community = tmp_path / "t2i.png", tmp_path / "community.png"
    # Community's job first: after its answer it sleeps generationTime twice (once before it starts its
    # download thread, once in it), and the plain client's job runs meanwhile.
    SdapiCommunity.Text2Img(FAST_MODEL, "a blue cube", str(community))
    time.sleep(0.5)
    StableDiffusionAPI.Text2Img("a red cube", 64, 64, str(plain))  # no model_id: the server's default model
    run.wait([plain, community], lambda: capsys.readouterr().out + sync_server.log.read_text()[-3000:])
    log = sync_server.log.read_text()
    assert "POST /api/v3/text2img 200" in log and "POST /api/v3/dreambooth 200" in log
    assert len(run.hosts) == 4  # one generation and one download each


def test_stablediffusionapi_processing_then_absolute_form_fetch(async_server: LiveServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # One 512x512 job first: the fast model is loaded and the eta the client sleeps on is that of this job
    # size (the eta counts the queue ahead, the new job included, so it is about twice one job: the
    # client sleeps that long, then fetches once).
    query = {"prompt": "warm up", "width": "512", "height": "512", "samples": "1"}
    primer = httpx.post(f"{async_server.url}/api/v3/text2img", params=query, headers={"key": KEY}, timeout=30).json()
    assert primer["status"] == "processing", primer
    deadline = time.monotonic() + 60
    while httpx.post(primer["fetch_result"], json={"key": KEY}, timeout=30).json()["status"] != "success":
        assert time.monotonic() < deadline, "the warm-up job did not finish"
        time.sleep(0.3)

    run = SdapiRun(async_server, monkeypatch)
    out = tmp_path / "fetched.png"
    StableDiffusionAPI.Text2Img("a red cube", 512, 512, str(out))
    run.wait([out], lambda: capsys.readouterr().out + async_server.log.read_text()[-3000:])
    printed = capsys.readouterr().out
    assert "No results" in printed and "Trying in:" in printed  # it went through processing -> sleep(eta)
    job = primer["id"] + 1
    assert logged(async_server, "POST /api/v3/text2img", job)
    assert logged(async_server, "POST /api/v6/images/fetch/" + str(job), job)


# --- modelslab-cli ---


def modelslab(server: LiveServer, home: Path, *args: str) -> tuple[dict, str]:
    """Run the CLI; returns its JSON answer (after any "Saved to" lines) and the whole stdout."""
    binary = shutil.which("modelslab", path=str(Path(sys.executable).parent)) or "modelslab"
    env = {**os.environ, "HOME": str(home), "MODELSLAB_NO_UPDATE_CHECK": "1", "MODELSLAB_BASE_URL": server.url,
           "MODELSLAB_API_KEY": "cli-key"}
    result = subprocess.run([binary, "-o", "json", *args], capture_output=True, text=True, timeout=150, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "{" in result.stdout, result.stdout + result.stderr
    return json.loads(result.stdout[result.stdout.index("{"):]), result.stdout


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.exists() else []


def test_modelslab_cli_text_to_image_and_fetch(live_server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    answer, stdout = modelslab(
        live_server, tmp_path, "generate", "image", "--prompt", "a red cube", "--model", "tiny-sd15",
        "--width", "64", "--height", "64", "--samples", "1", "--steps", "4", "--seed", "7",
        "--output-dir", str(out), "--timeout", "120s",
    )
    assert answer["status"] == "success", answer
    meta = answer["meta"]
    assert (meta["model_id"], meta["steps"], meta["seed"], meta["W"], meta["H"]) == ("tiny-sd15", 4, 7, 64, 64)
    files = pngs(out)
    assert len(files) == 1 and "Saved to" in stdout, stdout
    assert png_size(files[0].read_bytes()) == (64, 64)
    assert files[0].read_bytes() == httpx.get(answer["output"][0], timeout=30).content
    assert logged(live_server, "POST /api/v7/images/text-to-image", answer["id"])

    fetched, _ = modelslab(live_server, tmp_path, "generate", "fetch", "--id", str(answer["id"]), "--type", "image",
                           "--download=false")
    assert fetched["status"] == "success", fetched
    assert fetched["id"] == answer["id"] and fetched["output"] == answer["output"]
    assert logged(live_server, f"POST /api/v7/images/fetch/{answer['id']}", answer["id"])
    assert pngs(out) == files  # --download=false


def test_modelslab_cli_image_to_image(live_server: LiveServer, image_server: ImageServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    answer, _ = modelslab(
        live_server, tmp_path, "generate", "image-to-image", "--prompt", "make it blue",
        "--init-image", image_server.url("init.png"), "--model", "tiny-sd15", "--strength", "0.6",
        "--output-dir", str(out), "--timeout", "120s",
    )
    assert answer["status"] == "success", answer
    assert answer["meta"]["init_image"] == image_server.url("init.png") and answer["meta"]["strength"] == 0.6
    files = pngs(out)
    assert len(files) == 1 and png_size(files[0].read_bytes()) == (32, 32)  # img2img keeps the init image's size
    assert logged(live_server, "POST /api/v7/images/image-to-image", answer["id"])
