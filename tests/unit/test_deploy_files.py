"""The Dockerfile, .dockerignore, docker-compose.yml and .env.example parse, agree with each other, and name only
real files. (No Docker engine here: these read the files; the image itself is built where Docker is.)"""

from __future__ import annotations

import re
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


def copy_sources(value: str) -> list[str]:
    """The source paths of a COPY instruction's value (flags dropped, destination last)."""
    return [p for p in shlex.split(value) if not p.startswith("--")][:-1]


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore syntax: `*` and `?` stay inside one path segment, `**` spans any number."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str) -> bool:
    """Whether Docker leaves `path` out of the build context: a pattern excludes a path or any folder above
    it, a `!pattern` takes it back, and the last pattern that matches decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


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
        for source in copy_sources(value):
            assert (REPO / source).exists(), source
            assert not dockerignored(source), f"{source} is COPYed but .dockerignore leaves it out of the context"
    runs = " ".join(instructions("RUN"))
    assert "scripts/setup-venv" in runs  # the same install script that scripts/test (and so CI) runs
    assert "scripts/setup-venv" in (REPO / "scripts" / "test").read_text()


def test_dependencies_install_in_a_layer_before_the_code() -> None:
    """Editing server/ or pipelines/ must not invalidate the layer that downloads torch and the rest."""
    steps = [(i["instruction"], i["value"]) for i in dockerfile().structure if i["instruction"] in ("COPY", "RUN")]
    deps = next(n for n, (kind, value) in enumerate(steps) if kind == "RUN" and "scripts/setup-venv" in value)
    # Before it, only the dependency list and the install script; the build args name the torch wheel.
    copied_before = {source for kind, value in steps[:deps] if kind == "COPY" for source in copy_sources(value)}
    assert copied_before == {"pyproject.toml", "scripts/setup-venv"}, copied_before
    for arg in ("TORCH_INDEX_URL", "TORCH_VERSION"):
        assert f"${arg}" in steps[deps][1], arg
    code = [n for n, (kind, value) in enumerate(steps)
            if kind == "COPY" and {"server", "pipelines"} & set(copy_sources(value))]
    assert len(code) == 2 and min(code) > deps
    # After the code, the package itself goes in without touching the dependencies.
    package = [value for kind, value in steps[max(code):] if kind == "RUN" and "pip install" in value]
    assert package and "--no-deps" in package[0] and "-e ." in package[0]


def test_dockerfile_build_args_and_driver_note_match_the_cuda_version() -> None:
    """CUDA_IMAGE, TORCH_INDEX_URL and TORCH_VERSION are build args, and the comment's minimum driver is
    the one the default CUDA version needs (NVIDIA's release notes, Linux)."""
    args = dict(arg.split("=", 1) for arg in instructions("ARG") if "=" in arg)
    assert {"CUDA_IMAGE", "TORCH_INDEX_URL", "TORCH_VERSION"} <= set(args)
    assert dockerfile().structure[[i["instruction"] for i in dockerfile().structure].index("FROM")]["value"] == (
        "${CUDA_IMAGE}")
    setup = (REPO / "scripts" / "setup-venv").read_text()
    assert f'SDGATE_TORCH_VERSION:-{args["TORCH_VERSION"]}' in setup  # the image runs the torch CI tests
    cuda = ".".join(args["CUDA_IMAGE"].split(":")[1].split("-")[0].split(".")[:2])
    min_driver = {"12.4": 550, "12.6": 560, "12.8": 570, "12.9": 575, "13.0": 580}[cuda]
    text = (REPO / "Dockerfile").read_text()
    assert f"CUDA {cuda}" in text and f"driver >= {min_driver}" in text
    for arg in ("CUDA_IMAGE", "TORCH_INDEX_URL", "TORCH_VERSION"):
        assert f"--build-arg {arg}=" in text, f"the header comment shows how to set {arg}"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    for path in (".git", ".venv", ".venv/lib/python3.12/site-packages/torch/__init__.py", "data", "data/jobs.db",
                 "tiny", "tiny/models.yaml", ".env", "server/__pycache__/app.cpython-312.pyc",
                 "sdgate.egg-info", ".pytest_cache", ".ruff_cache"):
        assert dockerignored(path), path
    for path in ("pyproject.toml", "README.md", "models.yaml", "scripts/setup-venv", "server/http/app.py",
                 "pipelines/config.py", ".env.example"):
        assert not dockerignored(path), path


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
    # compose builds the same context as `docker build .`, with the same .dockerignore.
    assert (REPO / service["build"] / ".dockerignore").is_file()


def test_env_example_lists_every_setting() -> None:
    text = (REPO / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"SDGATE_{name.upper()}=" in text, name
