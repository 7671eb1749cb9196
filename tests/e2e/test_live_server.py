"""A real `sdgate serve` process over real sockets: the official SDK, the README example, the HF-cache path."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from modelslab_py.core.apis.community import Community
from modelslab_py.core.client import Client
from modelslab_py.schemas.community import Image2Image

from tests.conftest import REPO, ImageServer, LiveServer, free_port, sdgate_command, start_server


def test_official_python_sdk_img2img_and_fetch(live_server: LiveServer, image_server: ImageServer) -> None:
    client = Client(api_key="sdk-key", fetch_retry=30, fetch_timeout=1)
    client.base_url = f"{live_server.url}/api/"  # the only change a user makes
    api = Community(client)
    answer = api.image_to_image(
        Image2Image(prompt="a red cat", model_id="tiny-sd15", init_image=image_server.url("init.png"),
                    num_inference_steps=4, samples=1, seed=3, strength=0.6)
    )
    assert answer["status"] == "success", answer
    assert httpx.get(answer["output"][0]).headers["content-type"] == "image/png"
    fetched = api.fetch(str(answer["id"]))
    assert fetched["status"] == "success" and fetched["output"] == answer["output"]
    assert "sdk-key" not in live_server.log.read_text()  # keys are never logged


def test_readme_example_script(live_server: LiveServer) -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "smoke_img2img.sh"), live_server.url], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"status": "success"' in result.stdout.replace('"status":"success"', '"status": "success"')
    assert "downloaded" in result.stdout


def test_readme_example_script_follows_a_processing_answer(tiny_dir: Path, tmp_path: Path) -> None:
    """SDGATE_SYNC_TIMEOUT=0: every call answers `processing`; the script polls fetch_result, then downloads.

    The server listens on a port other than the default and is named by port only, as `./scripts/serve --port N`
    users would.
    """
    port = free_port()
    env = {"SDGATE_SYNC_TIMEOUT": "0", "SDGATE_API_KEYS": "smoke-key", "SDGATE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    server = start_server(["--config", str(tiny_dir / "models.yaml"), "--data-dir", str(tmp_path / "data")], env,
                          port, tmp_path / "server.log")
    try:
        result = subprocess.run(
            [str(REPO / "scripts" / "smoke_img2img.sh"), str(port), "smoke-key"], capture_output=True, text=True,
            timeout=180, env={**os.environ, "SMOKE_WAIT": "120", "SMOKE_OUT": str(tmp_path / "out.base64")},
        )
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    output = result.stdout.replace('"status": ', '"status":')
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"status":"processing"' in output and '"status":"success"' in output and "fetched " in output
    assert "downloaded" in output and (tmp_path / "out.base64").stat().st_size > 100
    assert base64.b64decode((tmp_path / "out.base64").read_bytes()).startswith(b"\x89PNG")


def test_readme_example_script_says_where_to_point_it(tmp_path: Path) -> None:
    result = subprocess.run([str(REPO / "scripts" / "smoke_img2img.sh"), str(free_port())], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "smoke_img2img.sh http://127.0.0.1:8000" in result.stderr


def _prefill_hf_cache(cache: Path, repo: str, source: Path) -> None:
    """The layout huggingface_hub writes (refs/main -> snapshots/<commit>/...), as `sdgate pull` would leave it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    shutil.copytree(source, folder / "snapshots" / commit)


def test_hub_repo_model_served_from_the_local_cache(tiny_dir: Path, tmp_path: Path, image_server: ImageServer) -> None:
    cache = tmp_path / "hub"
    _prefill_hf_cache(cache, "sdgate-test/tiny-sd15", tiny_dir / "tiny-sd15")
    _prefill_hf_cache(cache, "sdgate-test/ip-adapter", tiny_dir / "ip-adapter")
    _prefill_hf_cache(cache, "sdgate-test/lora", tiny_dir / "loras")
    config = tmp_path / "models.yaml"
    config.write_text(
        f"include: [{tiny_dir / 'models.yaml'}]\n"
        "models:\n"
        "  from-hub: {family: sd15, repo: sdgate-test/tiny-sd15}\n"
        "  not-in-cache: {family: sd15, repo: sdgate-test/absent}\n"
        "loras:\n"
        "  hub-lora: {family: sd15, repo: sdgate-test/lora, filename: tiny-lora-b.safetensors}\n"
        "ip_adapters:\n"
        "  ip-adapter_sd15: {family: sd15, repo: sdgate-test/ip-adapter, subfolder: models,"
        " weight: ip-adapter_sd15.safetensors, image_encoder: models/image_encoder}\n"
    )
    env = {"HF_HUB_CACHE": str(cache), "SDGATE_ALLOW_PRIVATE_URLS": "1", "SDGATE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    server = start_server(["--config", str(config), "--data-dir", str(tmp_path / "data")], env, free_port(),
                          tmp_path / "server.log")
    try:
        body = {"key": "k", "prompt": "x", "init_image": image_server.url("init.png"), "num_inference_steps": 3}
        ok = httpx.post(f"{server.url}/api/v6/images/img2img", json={**body, "model_id": "from-hub"}, timeout=60)
        assert ok.json()["status"] == "success", ok.text
        adapters = {"model_id": "from-hub", "lora_model": "hub-lora", "ip_adapter_id": "ip-adapter_sd15",
                    "ip_adapter_image": image_server.url("init.png")}
        with_adapters = httpx.post(f"{server.url}/api/v6/images/img2img", json={**body, **adapters}, timeout=60)
        assert with_adapters.json()["status"] == "success", with_adapters.text
        assert with_adapters.json()["meta"]["lora"] == "hub-lora"
        absent = httpx.post(f"{server.url}/api/v6/images/img2img", json={**body, "model_id": "not-in-cache"}, timeout=60)
        assert absent.json()["message"].endswith("run `sdgate pull not-in-cache`")
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_public_host_without_keys_refuses_to_start(tiny_dir: Path, tmp_path: Path, host: str) -> None:
    result = subprocess.run(
        [sdgate_command(), "serve", "--host", host, "--port", str(free_port()),
         "--config", str(tiny_dir / "models.yaml"), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "SDGATE_API_KEYS" in result.stderr and host in result.stderr


def test_bad_models_yaml_stops_start_up_with_the_entry_named(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  broken: {family: sd15}\n")
    result = subprocess.run(
        [sdgate_command(), "serve", "--config", str(config), "--data-dir", str(tmp_path), "--port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "models.broken" in result.stderr and str(config) in result.stderr
