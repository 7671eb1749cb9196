"""The `sdgate` command: refusals answer before torch is imported (run in a fresh interpreter, so the imports
are real), config errors are one line without a traceback, and serve pins torch's thread count."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from pipelines.fast_path import torch_threads_for

REPO = Path(__file__).resolve().parents[2]
V01_DB = REPO / "tests" / "fixtures" / "v01-jobs.db"
VALID = "models:\n  m:\n    family: sd15\n    path: weights\n    default: true\n"


def run_main(args: list[str], cwd: Path, **env: str) -> tuple[bool, int, str, str]:
    """main(args) in a new interpreter: (torch imported?, exit code, stdout before the marker, stderr)."""
    code = ("import sys; from server.cli import main; rc = main(sys.argv[1:]); "
            "print('@@', 'torch' in sys.modules, rc)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SDGATE_")}
    environ.update(env, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120)
    out, _, marker = done.stdout.rpartition("@@ ")
    torch_loaded, rc = marker.split()
    return torch_loaded == "True", int(rc), out, done.stderr


@pytest.fixture
def valid_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(VALID)
    return path


def test_version(tmp_path: Path) -> None:
    torch_loaded, rc, out, _ = run_main(["--version"], tmp_path)
    assert (torch_loaded, rc) == (False, 0)
    assert out.strip() == f"sdgate {version('sdgate')}"


def test_help_lists_every_command(tmp_path: Path) -> None:
    torch_loaded, rc, out, _ = run_main(["--help"], tmp_path)
    assert (torch_loaded, rc) == (False, 0)
    for name in ("serve", "make-tiny", "pull", "models", "bench", "db", "--version"):
        assert name in out


def test_serve_help_names_its_defaults(tmp_path: Path) -> None:
    _, rc, out, _ = run_main(["serve", "--help"], tmp_path)
    out = " ".join(out.split())  # argparse wraps to the terminal width
    assert rc == 0 and "SDGATE_PORT, else 7860" in out and "SDGATE_HOST, else 127.0.0.1" in out


def test_public_bind_without_keys_is_refused_before_torch(tmp_path: Path, valid_yaml: Path) -> None:
    torch_loaded, rc, _, err = run_main(["serve", "--host", "0.0.0.0", "--config", str(valid_yaml)], tmp_path)
    assert (torch_loaded, rc) == (False, 2)
    assert err.startswith("sdgate: refusing to serve on 0.0.0.0 without API keys")


def test_invalid_models_yaml_is_refused_before_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m:\n    family: sd99\n    path: weights\n")
    torch_loaded, rc, _, err = run_main(["serve", "--config", str(bad), "--data-dir", str(tmp_path / "d")], tmp_path)
    assert (torch_loaded, rc) == (False, 2)
    assert err.startswith(f"sdgate: {bad}: invalid entries") and "models.m.family" in err and "Traceback" not in err


def test_unknown_scheduler_in_models_yaml_is_refused_before_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID + "    realtime_defaults: {scheduler: NoSuchScheduler}\n")
    torch_loaded, rc, _, err = run_main(["serve", "--config", str(bad), "--data-dir", str(tmp_path / "d")], tmp_path)
    assert (torch_loaded, rc) == (False, 2) and "Unknown scheduler: NoSuchScheduler" in err


def test_unknown_preload_id_is_refused_before_torch(tmp_path: Path, valid_yaml: Path) -> None:
    torch_loaded, rc, _, err = run_main(["serve", "--config", str(valid_yaml), "--data-dir", str(tmp_path / "d")],
                                        tmp_path, SDGATE_PRELOAD="nope")
    assert (torch_loaded, rc) == (False, 2) and "SDGATE_PRELOAD" in err and "nope" in err


def test_outdated_job_database_is_refused_before_torch(tmp_path: Path, valid_yaml: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(V01_DB, data / "jobs.db")
    torch_loaded, rc, _, err = run_main(["serve", "--config", str(valid_yaml), "--data-dir", str(data)],
                                        tmp_path, SDGATE_DB_UPGRADE="no")
    assert (torch_loaded, rc) == (False, 2) and "sdgate db upgrade" in err


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_busy_port_is_refused_before_torch(tmp_path: Path, valid_yaml: Path, busy_port: int) -> None:
    args = ["serve", "--config", str(valid_yaml), "--data-dir", str(tmp_path / "d"), "--port", str(busy_port)]
    torch_loaded, rc, _, err = run_main(args, tmp_path)
    assert (torch_loaded, rc) == (False, 2)
    assert err.strip().startswith(f"sdgate: port {busy_port} on 127.0.0.1 is already in use")


@pytest.mark.parametrize("command", [["models"], ["pull"], ["pull", "m"]])
def test_missing_models_yaml_is_one_line(tmp_path: Path, command: list[str]) -> None:
    torch_loaded, rc, _, err = run_main(command, tmp_path)  # tmp_path holds no models.yaml
    assert (torch_loaded, rc) == (False, 2)
    assert err.splitlines() == [err.strip()] and err.startswith("sdgate: models.yaml: cannot read models file")


def test_db_upgrade_with_a_bad_url_is_one_line(tmp_path: Path) -> None:
    torch_loaded, rc, _, err = run_main(["db", "upgrade", "--database-url", "nosuchdialect://x"], tmp_path)
    assert (torch_loaded, rc) == (False, 2)
    assert err.splitlines() == [err.strip()] and err.startswith("sdgate: cannot use the job database URL")


def test_invalid_setting_is_one_line(tmp_path: Path, valid_yaml: Path) -> None:
    torch_loaded, rc, _, err = run_main(["serve", "--config", str(valid_yaml)], tmp_path, SDGATE_TORCH_THREADS="-1")
    assert (torch_loaded, rc) == (False, 2) and err.startswith("sdgate: invalid settings: SDGATE_TORCH_THREADS")


def test_automatic_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert torch_threads_for(0, "cpu") == 4
    assert torch_threads_for(3, "cpu") == 3 and torch_threads_for(3, "cuda") == 3  # an explicit count always wins
    assert torch_threads_for(0, "cuda") is None  # torch's default
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert torch_threads_for(0, "cpu") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the operator, or by Ray for a replica
    assert torch_threads_for(0, "cpu") is None


def test_serve_sets_torch_threads_before_the_app_starts(
    tmp_path: Path, valid_yaml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import uvicorn

    import server.ops.logging_setup
    from server.cli import main

    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:  # instead of binding a port and starting the lifespan
        seen.update(threads=torch.get_num_threads(), port=kwargs["port"], app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(server.ops.logging_setup, "configure_logging", lambda fmt: None)
    monkeypatch.setenv("SDGATE_TORCH_THREADS", "2")  # the suite runs with 1 thread: 2 shows the setting took
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    before = torch.get_num_threads()
    try:
        assert main(["serve", "--config", str(valid_yaml), "--data-dir", str(tmp_path / "d"), "--port", str(port)]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen["threads"] == 2 and seen["port"] == port and seen["app"] is not None
