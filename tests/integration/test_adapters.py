"""Per-request LoRAs, VAE, embeddings and IP-Adapters: each changes the image, and none leaks into the next job."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import ImageServer
from tests.integration.test_img2img_api import app_client

API = "/api/v6/images/img2img"
PLAIN = {"tomesd": "no", "safety_checker": "no"}


def pixels(client: TestClient, answer: dict) -> np.ndarray:
    assert answer["status"] == "success", answer
    response = client.get(answer["output"][0].removeprefix("http://testserver"))
    return np.asarray(Image.open(io.BytesIO(response.content))).astype(int)


@pytest.fixture(scope="module")
def adapters_client(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(tiny_dir, tmp_path_factory.mktemp("adapters")) as client:
        yield client


def run(client: TestClient, body: dict, **changes: object) -> dict:
    return client.post(API, json={**body, **PLAIN, **changes}).json()


def test_loras_change_the_image_and_strengths_matter(adapters_client: TestClient, body: dict) -> None:
    base = pixels(adapters_client, run(adapters_client, body))
    a = run(adapters_client, body, lora_model="tiny-lora-a")
    assert a["meta"]["lora"] == "tiny-lora-a" and a["meta"]["lora_strength"] == 1
    half = run(adapters_client, body, lora_model="tiny-lora-a,tiny-lora-b", lora_strength="0.5,1")
    full = run(adapters_client, body, lora_model="tiny-lora-a,tiny-lora-b", lora_strength="1")
    assert half["meta"]["lora_strength"] == "0.5,1" and full["meta"]["lora_strength"] == "1,1"
    images = [pixels(adapters_client, r) for r in (a, half, full)]
    assert not np.array_equal(base, images[0])
    assert not np.array_equal(images[1], images[2]) and not np.array_equal(images[0], images[2])


def test_kohya_and_diffusers_files_with_the_same_weights_match(adapters_client: TestClient, body: dict) -> None:
    diffusers_format = run(adapters_client, body, lora_model="tiny-lora-a")
    kohya_format = run(adapters_client, body, lora_model="tiny-lora-a-kohya")
    assert np.array_equal(pixels(adapters_client, diffusers_format), pixels(adapters_client, kohya_format))


def test_lora_errors_and_placeholders(adapters_client: TestClient, body: dict) -> None:
    wrong_family = run(adapters_client, body, model_id="tiny-sdxl", lora_model="tiny-lora-a")
    assert wrong_family["message"] == "lora_model tiny-lora-a is for sd15 models; model tiny-sdxl is sdxl"
    count = run(adapters_client, body, lora_model="tiny-lora-a,tiny-lora-b", lora_strength="0.5,0.6,0.7")
    assert count["status"] == "error" and "lora_strength has 3 values for 2 lora_model ids" in count["message"]
    placeholder = run(adapters_client, body, lora_model="lora_model_id,tiny-lora-b")
    assert placeholder["meta"]["ignored"] == ["lora_model:lora_model_id"] and placeholder["meta"]["lora"] == "tiny-lora-b"


def test_vae_override_and_embedding_change_the_image(adapters_client: TestClient, body: dict) -> None:
    base = pixels(adapters_client, run(adapters_client, body))
    vae = run(adapters_client, body, vae="tiny-vae")
    assert vae["meta"]["vae"] == "tiny-vae" and not np.array_equal(base, pixels(adapters_client, vae))
    token_prompt = {"prompt": "a <tiny-embedding> cat"}
    without = run(adapters_client, body, **token_prompt)
    with_embedding = run(adapters_client, body, embeddings_model="tiny-embedding", **token_prompt)
    assert with_embedding["meta"]["embeddings"] == "tiny-embedding"
    assert not np.array_equal(pixels(adapters_client, without), pixels(adapters_client, with_embedding))


def test_ip_adapters(adapters_client: TestClient, body: dict, image_server: ImageServer) -> None:
    reference = {"ip_adapter_image": image_server.url("init-40x36.png")}
    for model_id, adapter in (("tiny-sd15", "ip-adapter_sd15"), ("tiny-sdxl", "ip-adapter_sdxl")):
        base = run(adapters_client, body, model_id=model_id)
        zero = run(adapters_client, body, model_id=model_id, ip_adapter_id=adapter, ip_adapter_scale=0, **reference)
        used = run(adapters_client, body, model_id=model_id, ip_adapter_id=adapter, ip_adapter_scale="0.6", **reference)
        assert used["meta"]["ip_adapter_id"] == adapter and used["meta"]["ip_adapter_scale"] == 0.6
        assert np.array_equal(pixels(adapters_client, base), pixels(adapters_client, zero)), model_id
        assert not np.array_equal(pixels(adapters_client, base), pixels(adapters_client, used)), model_id
    wrong = run(adapters_client, body, ip_adapter_id="ip-adapter_sdxl", **reference)
    assert wrong["message"] == "ip_adapter_id ip-adapter_sdxl is for sdxl models; model tiny-sd15 is sd15"
    assert run(adapters_client, body, ip_adapter_id="ip-adapter_sd15")["message"].startswith("ip_adapter_image is required")
    unconfigured = run(adapters_client, body, ip_adapter_id="ip-adapter-plus-face_sd15", **reference)
    assert unconfigured["message"].startswith("ip_adapter_id ip-adapter-plus-face_sd15 is not configured")


def test_no_adapter_leaks_into_a_plain_job(
    tiny_dir: Path, tmp_path: Path, body: dict, image_server: ImageServer
) -> None:
    with app_client(tiny_dir, tmp_path / "fresh") as fresh:
        expected = pixels(fresh, run(fresh, body))
    reference = {"ip_adapter_image": image_server.url("init.png")}
    with app_client(tiny_dir, tmp_path / "busy") as busy:
        for changes in (
            {"lora_model": "tiny-lora-a"},
            {"lora_model": "tiny-lora-a,tiny-lora-b", "lora_strength": "0.5,1"},
            {"vae": "tiny-vae"},
            {"embeddings_model": "tiny-embedding", "prompt": "a <tiny-embedding> cat"},
            {"ip_adapter_id": "ip-adapter_sd15", **reference},
            {"lora_model": "tiny-lora-b", "vae": "tiny-vae", "embeddings_model": "tiny-embedding",
             "ip_adapter_id": "ip-adapter_sd15", **reference},
        ):
            assert run(busy, body, **changes)["status"] == "success", changes
        after = run(busy, body)
        assert np.array_equal(pixels(busy, after), expected)
        # The plain prompt would now be tokenised differently if the embedding had stayed loaded.
        with_token = run(busy, body, prompt="a <tiny-embedding> cat")
    with app_client(tiny_dir, tmp_path / "fresh2") as fresh:
        assert np.array_equal(pixels(fresh, run(fresh, body, prompt="a <tiny-embedding> cat")), pixels(busy, with_token))


def test_lora_memory_is_bounded(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    with app_client(tiny_dir, tmp_path, max_loras=1) as small:
        run(small, body, lora_model="tiny-lora-a")
        run(small, body, lora_model="tiny-lora-b")
        model = small.app.state.sdgate.registry.get("tiny-sd15")
        assert list(model.loras) == ["tiny-lora-b"]
        assert model.pipe.get_list_adapters()["unet"] == ["tiny-lora-b"]


def test_model_default_vae_and_incompatible_vae(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    wide = tmp_path / "wide-vae"
    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2,
                  up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=16, norm_num_groups=32).save_pretrained(wide)
    config = tmp_path / "models.yaml"
    shutil.copytree(tiny_dir / "tiny-vae", tmp_path / "vae-copy")
    config.write_text(
        "models:\n"
        f"  with-vae: {{family: sd15, path: {tiny_dir / 'tiny-sd15'}, vae: own-vae}}\n"
        f"  plain: {{family: sd15, path: {tiny_dir / 'tiny-sd15'}}}\n"
        "vaes:\n"
        f"  own-vae: {{family: sd15, path: {tmp_path / 'vae-copy'}}}\n"
        f"  wide: {{family: sd15, path: {wide}}}\n"
    )
    with app_client(tiny_dir, tmp_path / "data", config=config) as app:
        default = run(app, body, model_id="with-vae")
        explicit = run(app, body, model_id="plain", vae="own-vae")
        assert default["meta"]["vae"] == "own-vae"
        assert np.array_equal(pixels(app, default), pixels(app, explicit))
        mismatch = run(app, body, model_id="plain", vae="wide")
        assert mismatch["status"] == "error" and "16 latent channels" in mismatch["message"]
        assert run(app, body, model_id="plain")["status"] == "success"


def test_embedding_file_formats(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    """A1111 .safetensors (emb_params), A1111 .pt (string_to_param) and SDXL clip_l/clip_g files all load."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(7)
    save_file({"emb_params": torch.randn(3, 32, generator=generator)}, str(tmp_path / "multi.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(2, 32, generator=generator)}}, tmp_path / "legacy.pt")
    save_file({"clip_l": torch.randn(1, 32, generator=generator), "clip_g": torch.randn(1, 32, generator=generator)},
              str(tmp_path / "xl.safetensors"))
    config = tmp_path / "models.yaml"
    config.write_text(
        f"include: [{tiny_dir / 'models.yaml'}]\n"
        "embeddings:\n"
        f"  multi: {{family: sd15, file: {tmp_path / 'multi.safetensors'}, token: '<multi>'}}\n"
        f"  legacy: {{family: sd15, file: {tmp_path / 'legacy.pt'}, token: '<legacy>'}}\n"
        f"  xl: {{family: sdxl, file: {tmp_path / 'xl.safetensors'}, token: '<xl>'}}\n"
    )
    with app_client(tiny_dir, tmp_path / "data", config=config) as app:
        for model_id, embedding, token in (("tiny-sd15", "multi", "<multi>"), ("tiny-sd15", "legacy", "<legacy>"),
                                           ("tiny-sdxl", "xl", "<xl>")):
            prompt = {"model_id": model_id, "prompt": f"a {token} cat"}
            without = run(app, body, **prompt)
            used = run(app, body, embeddings_model=embedding, **prompt)
            assert used["meta"]["embeddings"] == embedding
            assert not np.array_equal(pixels(app, without), pixels(app, used)), embedding
            assert np.array_equal(pixels(app, without), pixels(app, run(app, body, **prompt))), embedding
        wrong = run(app, body, model_id="tiny-sd15", embeddings_model="xl")
        assert wrong["message"] == "embeddings_model xl is for sdxl models; model tiny-sd15 is sd15"
