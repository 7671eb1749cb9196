"""The Dockerfile, docker-compose.yml and .env.example parse, agree with each other, and name only real files."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from dockerfile_parse import DockerfileParser

from server.ops.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(REPO / "Dockerfile").open("rb"))
    return parser


def instructions(name: str) -> list[str]:
    return [i["value"] for i in dockerfile().structure if i["instruction"] == name]


def test_dockerfile_base_user_health_and_entrypoint() -> None:
    parser = dockerfile()
    assert parser.baseimage.startswith("nvidia/cuda:") and "runtime" in parser.baseimage
    args = dict(arg.split("=", 1) for arg in instructions("ARG") if "=" in arg)
    # The CUDA runtime and the torch wheel index must name the same CUDA version.
    cuda = args["CUDA_IMAGE"].split(":")[1].split("-")[0]  # e.g. 12.8.1
    assert args["TORCH_INDEX_URL"].endswith("cu" + "".join(cuda.split(".")[:2]))
    assert instructions("USER") and instructions("USER")[-1] not in ("root", "0")
    assert any("/health" in h for h in instructions("HEALTHCHECK"))
    entry = instructions("ENTRYPOINT")[-1]
    assert "serve" in entry and "0.0.0.0" in entry
    volumes = " ".join(instructions("VOLUME"))
    assert "/cache/huggingface" in volumes and "/data" in volumes
    envs = " ".join(instructions("ENV"))
    assert "HF_HUB_OFFLINE=1" in envs and "PYTORCH_CUDA_ALLOC_CONF" in envs


def test_dockerfile_copies_only_existing_files_and_installs_like_ci() -> None:
    for value in instructions("COPY"):
        parts = [p for p in shlex.split(value) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (REPO / source).exists(), source
    runs = " ".join(instructions("RUN"))
    assert "scripts/setup-venv" in runs  # the same install script that scripts/test (and so CI) runs
    assert "scripts/setup-venv" in (REPO / "scripts" / "test").read_text()


def test_compose_reserves_a_gpu_and_mounts_both_volumes() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["sdgate"]
    assert (REPO / service["build"] / "Dockerfile").is_file()
    device = service["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    mounts = {volume.split(":")[1] for volume in service["volumes"]}
    assert mounts == {"/cache/huggingface", "/data"}
    assert {volume.split(":")[0] for volume in service["volumes"]} <= set(compose["volumes"])
    for env_file in service["env_file"]:
        assert (REPO / env_file["path"]).exists() or env_file["required"] is False
    assert (REPO / ".env.example").is_file()


def test_env_example_lists_every_setting() -> None:
    text = (REPO / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"SDGATE_{name.upper()}=" in text, name
