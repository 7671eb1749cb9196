"""What a plain install brings: the NSFW detector that the default safety_checker=yes needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pipelines.postprocess.safety import NudeNetDetector, load_detector

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def test_the_default_detector_is_a_core_dependency() -> None:
    core = [requirement.split("=")[0].strip() for requirement in PYPROJECT["project"]["dependencies"]]
    assert "nudenet" in core
    assert PYPROJECT["project"]["optional-dependencies"]["safety"] == []  # old installs naming the extra still work


def test_a_plain_install_has_a_detector_for_the_default_settings() -> None:
    assert isinstance(load_detector("auto", None, 0.5), NudeNetDetector)
