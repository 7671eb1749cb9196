"""A job database written by v0.1 (tests/fixtures/v01-jobs.db) after upgrade: finished jobs are fetchable,
failed ones report their error, queued ones run, and new jobs are written in today's record format."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.config import ConfigError
from server.http.app import validate_startup
from tests.conftest import make_settings
from tests.integration.test_img2img_api import app_client, is_error

FIXTURE = Path(__file__).parents[1] / "fixtures" / "v01-jobs.db"


def _fetch(app: TestClient, job_id: int) -> dict:
    return app.post(f"/api/v6/images/fetch/{job_id}", json={"key": "x"}).json()


def _v01_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE, data / "jobs.db")
    return data


def test_v01_jobs_after_upgrade(tiny_dir: Path, tmp_path: Path) -> None:
    with app_client(tiny_dir, _v01_data_dir(tmp_path)) as app:
        first, second = _fetch(app, 1), _fetch(app, 2)
        assert first["status"] == "success" and len(first["output"]) == 1
        assert first["meta"]["seed"] == 1234 and first["meta"]["track_id"] == "v01-first"
        assert second["status"] == "success" and len(second["output"]) == 2 and second["meta"]["W"] == 24
        assert is_error(_fetch(app, 3), "Model tiny-sd15-missing is not available on this server yet")
        # Queued by v0.1 on a server that is gone: this server claims and runs them (one with LoRA + IP-Adapter).
        deadline = time.monotonic() + 120
        while (answers := [_fetch(app, 4), _fetch(app, 5)]) and any(a["status"] != "success" for a in answers):
            assert all(a["status"] == "processing" for a in answers if a["status"] != "success"), answers
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert answers[0]["meta"]["seed"] == 555 and answers[1]["meta"]["lora"] == "tiny-lora-a"
        for answer in answers:
            assert app.get(answer["output"][0].removeprefix("http://testserver")).status_code == 200
        rows = app.app.state.sdgate.jobs
        assert [rows.get(i).schema_version for i in range(1, 6)] == [1] * 5
        new = app.post("/api/v6/images/text2img", json={"prompt": "a cat", "width": 64, "height": 64,
                                                         "num_inference_steps": 2}).json()
        assert new["id"] == 6
        row = rows.get(6)
        assert (row.schema_version, row.task, row.route) == (2, "text2img", "/api/v6/images/text2img")


def test_old_shared_database_refuses_to_start_without_upgrade(tiny_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tiny_dir, _v01_data_dir(tmp_path), db_upgrade="no")
    with pytest.raises(ConfigError, match="sdgate db upgrade"):
        validate_startup(settings)
