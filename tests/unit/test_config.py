"""models.yaml errors name the file and the entry; includes merge; relative paths resolve next to the file."""

from pathlib import Path

import pytest

from pipelines.config import ConfigError, load_config
from server.api.fields import IP_ADAPTER_IDS


def write(tmp_path: Path, text: str, name: str = "models.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "models:\n  m: {family: sd15, path: folder, default: true}\n"))
    assert config.models["m"].path == tmp_path / "folder"
    assert config.default_model_id() == "m"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("models:\n  bad: {family: sd15}\n", "models.bad"),
        ("models:\n  bad: {family: sd15, path: a, repo: b/c}\n", "exactly one of path, file, repo, url"),
        ("models:\n  bad: {family: sd21, path: a}\n", "models.bad.family"),
        ("models:\n  bad: {family: sd15, file: a.safetensors}\n", "needs `config:`"),
        ("models:\n  bad: {family: sd15, path: a, colour: red}\n", "models.bad.colour"),
        ("loras:\n  l: {family: sd15}\n", "loras.l"),
        ("widgets: {}\n", "widgets"),
        ("models:\n  a: {family: sd15, path: a, default: true}\n  b: {family: sd15, path: b, default: true}\n",
         "only one model may be `default: true`"),
        ("models: [1, 2\n", "not valid YAML"),
        ("- 1\n", "expected a mapping"),
    ],
)
def test_invalid_files_are_explained(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_missing_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read models file"):
        load_config(tmp_path / "nope.yaml")


def test_include_merges_and_the_including_file_wins(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "models:\n  t: {family: sd15, path: t}\n")
    config = load_config(write(tmp_path, "include: [sub/models.yaml]\nmodels:\n  r: {family: sdxl, repo: a/b}\n"))
    assert set(config.models) == {"t", "r"} and config.models["t"].path == tmp_path / "sub" / "t"
    override = write(tmp_path, "include: [sub/models.yaml]\nmodels:\n  t: {family: sd15, repo: a/b}\n", "o.yaml")
    assert load_config(override).models["t"].repo == "a/b"
    missing = write(tmp_path, "include: [nope/models.yaml]\n", "missing.yaml")
    with pytest.raises(ConfigError, match="make-tiny"):
        load_config(missing)


def test_repository_models_yaml_is_valid(tmp_path: Path) -> None:
    """The shipped models.yaml parses, with the tiny include stubbed out, and lists real SD1.5 and SDXL repos."""
    repo_yaml = Path(__file__).resolve().parents[2] / "models.yaml"
    text = repo_yaml.read_text().replace("  - tiny/models.yaml\n", "").replace("include:\n", "")
    config = load_config(write(tmp_path, text))
    assert config.models["realistic-vision-51"].repo == "stablediffusionapi/realistic-vision-51"
    assert {m.family for m in config.models.values() if m.repo} == {"sd15", "sdxl"}
    assert set(config.ip_adapters) == set(IP_ADAPTER_IDS)
    assert all(entry.repo == "h94/IP-Adapter" for entry in config.ip_adapters.values())
    assert config.loras and config.vaes and config.embeddings


def test_realtime_flag_one_per_registry_and_the_including_file_wins(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, "models:\n  fast: {family: sd15, repo: a/b, realtime: true}\n  d: {family: sd15, repo: a/c, default: true}\n",
          "sub/models.yaml")
    inherited = load_config(write(tmp_path, "include: [sub/models.yaml]\n", "only.yaml"))
    assert inherited.realtime_model_id() == "fast"
    mine = load_config(write(tmp_path, "include: [sub/models.yaml]\nmodels:\n  turbo: {family: sdxl, repo: a/t, realtime: true, "
                                       "realtime_defaults: {steps: 1, guidance_scale: 0}}\n", "mine.yaml"))
    assert mine.realtime_model_id() == "turbo" and not mine.models["fast"].realtime
    assert mine.models["turbo"].realtime_defaults.steps == 1
    no_flag = load_config(write(tmp_path, "models:\n  d: {family: sd15, repo: a/c, default: true}\n", "plain.yaml"))
    assert no_flag.realtime_model_id() == "d"  # no realtime model: the default one answers realtime requests
    with pytest.raises(ConfigError, match="realtime"):
        load_config(write(tmp_path, "models:\n  a: {family: sd15, repo: a/b, realtime: true}\n"
                                    "  b: {family: sd15, repo: a/c, realtime: true}\n", "two.yaml"))
    with pytest.raises(ConfigError, match="Unknown scheduler"):
        load_config(write(tmp_path, "models:\n  a: {family: sd15, repo: a/b, realtime: true, "
                                    "realtime_defaults: {scheduler: Nope}}\n", "bad.yaml"))


def test_shipped_models_yaml_has_a_realtime_model_and_inpainting_checkpoints(tmp_path: Path) -> None:
    repo_yaml = Path(__file__).resolve().parents[2] / "models.yaml"
    text = repo_yaml.read_text().replace("  - tiny/models.yaml\n", "").replace("include:\n", "")
    config = load_config(write(tmp_path, text))
    assert config.realtime_model_id() == "sdxl-turbo"
    assert {m.family for m in config.models.values() if m.inpainting} == {"sd15", "sdxl"}
