"""Operator-facing surface: readiness and preload, model_list, model_reload, `sdgate models`, JSON logs,
resumable URL pulls, the OpenAPI document and its example."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.pull import download_url
from server.cli import main
from server.ops.logging_setup import configure_logging
from tests.integration.test_img2img_api import app_client


def wait_ready(client: TestClient, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (answer := client.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.05)
    return answer.json()


def test_preload_warms_models_before_ready(tiny_dir: Path, tmp_path: Path) -> None:
    with app_client(tiny_dir, tmp_path, preload="tiny-sd15,tiny-sdxl") as app:
        assert app.get("/health").status_code == 200  # liveness does not wait for models
        ready = wait_ready(app)
        assert set(ready["loaded_models"]) == {"tiny-sd15", "tiny-sdxl"}


def test_failed_preload_keeps_ready_at_503(tiny_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(f"include: [{tiny_dir / 'models.yaml'}]\nmodels:\n  gone: {{family: sd15, repo: x/never}}\n")
    with app_client(tiny_dir, tmp_path / "data", config=config, preload="gone") as app:
        deadline = time.monotonic() + 30
        while "failed" not in (answer := app.get("/ready")).json()["reason"]:
            assert answer.status_code == 503 and time.monotonic() < deadline
            time.sleep(0.05)
        assert answer.status_code == 503 and "sdgate pull gone" in answer.json()["reason"]
        assert app.get("/health").status_code == 200


def test_unknown_preload_id_stops_start_up(tiny_dir: Path, tmp_path: Path) -> None:
    from pipelines.config import ConfigError

    with pytest.raises(ConfigError, match="SDGATE_PRELOAD"):
        with app_client(tiny_dir, tmp_path, preload="no-such-model"):
            pass


def test_model_list_has_the_hosted_bare_array_shape(tiny_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(f"include: [{tiny_dir / 'models.yaml'}]\nmodels:\n  remote: {{family: sdxl, repo: x/not-here,"
                      " instance_prompt: mdjrny-v4 style, name: Remote model}\n")
    with app_client(tiny_dir, tmp_path / "data", config=config) as app:
        models = app.post("/api/v4/dreambooth/model_list", json={"key": "k"}).json()
    assert isinstance(models, list)
    by_id = {m["model_id"]: m for m in models}
    assert by_id["tiny-sd15"]["status"] == "model_ready" and by_id["remote"]["status"] == "not_downloaded"
    assert by_id["remote"]["instance_prompt"] == "mdjrny-v4 style" and by_id["remote"]["model_name"] == "Remote model"
    for model in models:
        assert {"model_id", "status", "created_at", "instance_prompt", "model_name", "description",
                "screenshots"} <= set(model)


def test_model_reload(tiny_dir: Path, tmp_path: Path) -> None:
    with app_client(tiny_dir, tmp_path, sync_timeout=0) as app:
        first = app.post("/api/v6/images/model_reload", json={"key": "k", "model_id": "tiny-sd15"}).json()
        assert first["status"] in ("processing", "success")
        deadline = time.monotonic() + 30
        while (answer := app.post("/api/v6/images/model_reload", json={"model_id": "tiny-sd15"}).json())["status"] != "success":
            assert answer["status"] == "processing" and time.monotonic() < deadline
            time.sleep(0.05)
        assert "tiny-sd15" in app.app.state.sdgate.registry.loaded_ids()
        unknown = app.post("/api/v6/images/model_reload", json={"model_id": "nope"}).json()
        assert unknown["status"] == "error" and unknown["message"] == "Model not found: nope"


def test_sdgate_models_lists_local_and_missing(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(f"include: [{tiny_dir / 'models.yaml'}]\nmodels:\n  remote: {{family: sd15, repo: x/not-here}}\n")
    assert main(["models", "--config", str(config), "--data-dir", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert " local " in lines["tiny-sd15"] and "MB" in lines["tiny-sd15"]
    assert " missing " in lines["remote"] and "x/not-here" in lines["remote"]
    assert "ip_adapters" in lines["ip-adapter_sd15"]


def test_json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    try:
        logging.getLogger("server.workers.runner").info("job 3 success", extra={"job_id": 3, "timings": {"generate": 0.2}})
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["job_id"] == 3 and line["timings"] == {"generate": 0.2} and line["levelname"] == "INFO"
    finally:
        logging.getLogger().handlers.clear()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves DATA with Range support, as a CDN does."""

    data = bytes(range(256)) * 400
    ranges: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        start = 0
        if "Range" in self.headers:
            _RangeHandler.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.data[start:]
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_url_pull_resumes_a_partial_download(tmp_path: Path) -> None:
    import hashlib

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = tmp_path / "weights.safetensors"
        (tmp_path / "weights.safetensors.partial").write_bytes(_RangeHandler.data[:30_000])
        url = f"http://127.0.0.1:{server.server_address[1]}/weights.safetensors"
        download_url(url, target, hashlib.sha256(_RangeHandler.data).hexdigest())
        assert target.read_bytes() == _RangeHandler.data and _RangeHandler.ranges == ["bytes=30000-"]
    finally:
        server.shutdown()


def test_openapi_documents_the_request_and_three_answers_and_its_example_runs(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    operation = doc["paths"]["/api/v6/images/img2img"]["post"]
    request_schema = doc["components"]["schemas"]["Img2ImgRequest"]
    assert all(field.get("description") for field in request_schema["properties"].values())
    answers = json.dumps(operation["responses"]["200"])
    for shape in ("SuccessResponse", "ProcessingResponse", "ErrorResponse"):
        assert shape in answers
    example = request_schema["examples"][0]
    answer = client.post("/api/v6/images/img2img", json=example).json()
    assert answer["status"] == "success", answer
    assert client.get("/docs").status_code == 200
