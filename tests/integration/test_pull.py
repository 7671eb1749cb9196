"""`sdgate pull` for plain-URL sources against a loopback server standing in for the internet."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.pull import pull
from pipelines.registry import ModelNotAvailable, ModelRegistry
from server.cli import main
from tests.conftest import ImageServer


def write_config(tmp_path: Path, tiny_dir: Path, url: str, sha256: str) -> Path:
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        f"  remote-single: {{family: sd15, url: '{url}', sha256: '{sha256}', config: {tiny_dir / 'tiny-sd15-single-config'}}}\n"
    )
    return config


def test_pull_downloads_checks_and_the_model_loads(tiny_dir: Path, tmp_path: Path, image_server: ImageServer) -> None:
    data = (tiny_dir / "tiny-sd15-single.safetensors").read_bytes()
    url = image_server.add("remote-single.safetensors", data)
    config = load_config(write_config(tmp_path, tiny_dir, url, hashlib.sha256(data).hexdigest()))
    registry = ModelRegistry(config, tmp_path / "data")
    with pytest.raises(ModelNotAvailable, match="sdgate pull remote-single"):
        registry.get("remote-single")
    assert pull(config, tmp_path / "data", ["remote-single"]) == 0
    target = tmp_path / "data" / "downloads" / "remote-single" / "remote-single.safetensors"
    assert target.read_bytes() == data
    assert registry.get("remote-single").family == "sd15"


def test_checksum_mismatch_leaves_nothing_usable(
    tiny_dir: Path, tmp_path: Path, image_server: ImageServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = image_server.add("tampered.safetensors", b"not the file you wanted")
    config_path = write_config(tmp_path, tiny_dir, url, "0" * 64)
    code = main(["pull", "remote-single", "--config", str(config_path), "--data-dir", str(tmp_path / "data")])
    assert code == 1 and "checksum mismatch" in capsys.readouterr().out
    folder = tmp_path / "data" / "downloads" / "remote-single"
    assert list(folder.iterdir()) == []


def test_pull_reports_unknown_ids_and_missing_local_sources(tiny_dir: Path, tmp_path: Path) -> None:
    shutil.copy(tiny_dir / "models.yaml", tmp_path / "models.yaml")  # relative paths now point nowhere
    config = load_config(tmp_path / "models.yaml")
    assert pull(config, tmp_path, ["tiny-sd15"]) == 1
    assert pull(config, tmp_path, ["no-such-id"]) == 1
    assert pull(load_config(tiny_dir / "models.yaml"), tmp_path, []) == 0
