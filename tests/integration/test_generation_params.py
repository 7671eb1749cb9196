"""Every generation parameter does what API.md says: schedulers, karras, algorithm_type, clip_skip, tomesd, styles."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline, UniPCMultistepScheduler
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.clip_skip import clip_skip_embeds
from pipelines.prompts import DEFAULT_NEGATIVE, build_prompt, get_style, styles
from pipelines.schedulers import SCHEDULER_NAMES, SUBSTITUTES
from tests.conftest import png_bytes

API = "/api/v6/images/img2img"


def pixels(client: TestClient, answer: dict, index: int = 0) -> np.ndarray:
    assert answer["status"] == "success", answer
    response = client.get(answer["output"][index].removeprefix("http://testserver"))
    return np.asarray(Image.open(io.BytesIO(response.content))).astype(int)


def generate(client: TestClient, body: dict, **changes: object) -> dict:
    return client.post(API, json={**body, **changes}).json()


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_every_hosted_scheduler_name_produces_an_image(client: TestClient, body: dict, name: str) -> None:
    answer = generate(client, body, scheduler=name, num_inference_steps=6)
    assert answer["meta"]["scheduler"] == name
    assert answer["meta"]["scheduler_used"] == SUBSTITUTES.get(name, name)
    assert pixels(client, answer).std() > 0


def test_karras_changes_euler_and_is_reported_ignored_elsewhere(client: TestClient, body: dict) -> None:
    karras = generate(client, body, scheduler="EulerDiscreteScheduler", use_karras_sigmas="yes")
    plain = generate(client, body, scheduler="EulerDiscreteScheduler", use_karras_sigmas="no")
    assert karras["meta"]["karras_applied"] is True and plain["meta"]["karras_applied"] is False
    assert not np.array_equal(pixels(client, karras), pixels(client, plain))
    ddim = generate(client, body, scheduler="DDIMScheduler", use_karras_sigmas="yes")
    assert ddim["meta"]["karras_applied"] is False
    assert "use_karras_sigmas:DDIMScheduler" in ddim["meta"]["ignored"]


def test_dpmsolver_plus_plus_plus_runs_and_is_seed_deterministic(client: TestClient, body: dict) -> None:
    changes = {"scheduler": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver+++"}
    first, again = generate(client, body, **changes), generate(client, body, **changes)
    default = generate(client, body, scheduler="DPMSolverMultistepScheduler")
    assert first["meta"]["algorithm_type"] == "dpmsolver+++"
    assert np.array_equal(pixels(client, first), pixels(client, again))
    assert not np.array_equal(pixels(client, first), pixels(client, default))
    assert default["meta"]["algorithm_type"] == "no"
    bad = generate(client, body, algorithm_type="dpmsolver")
    assert bad["status"] == "error" and bad["message"].startswith("algorithm_type must be one of")
    euler = generate(client, body, scheduler="EulerDiscreteScheduler", algorithm_type="dpmsolver+++")
    assert "algorithm_type:EulerDiscreteScheduler" in euler["meta"]["ignored"]


def reference_clip_skip(pipe: StableDiffusionImg2ImgPipeline, prompt: str, skip: int) -> torch.Tensor:
    """Written independently of pipelines/clip_skip.py: the penultimate-style CLIP output."""
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out = pipe.text_encoder(ids, output_hidden_states=True)
    return pipe.text_encoder.final_layer_norm(out.hidden_states[-(skip + 1)])


def test_clip_skip_sd15_matches_a_reference_computation(client: TestClient, body: dict, tiny_dir: Path) -> None:
    plain = {"tomesd": "no", "use_karras_sigmas": "no", "safety_checker": "no"}
    one = generate(client, body, clip_skip=1, **plain)
    two = generate(client, body, clip_skip="2", **plain)
    assert two["meta"]["clip_skip"] == 2
    assert not np.array_equal(pixels(client, one), pixels(client, two))
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_dir / "tiny-sd15", local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    meta = two["meta"]
    with torch.inference_mode():
        image = pipe(
            prompt_embeds=reference_clip_skip(pipe, meta["prompt"], 1),
            negative_prompt_embeds=reference_clip_skip(pipe, meta["negative_prompt"], 1),
            image=Image.open(io.BytesIO(png_bytes())).convert("RGB"),
            strength=meta["strength"], num_inference_steps=meta["steps"], guidance_scale=meta["guidance_scale"],
            generator=[torch.Generator("cpu").manual_seed(meta["seed"])],
        ).images[0]
    assert np.array_equal(pixels(client, two), np.asarray(image).astype(int))


def test_clip_skip_sdxl_matches_diffusers(client: TestClient, body: dict, tiny_dir: Path) -> None:
    plain = {"model_id": "tiny-sdxl", "tomesd": "no", "use_karras_sigmas": "no", "safety_checker": "no"}
    one, three = generate(client, body, clip_skip=1, **plain), generate(client, body, clip_skip=3, **plain)
    assert not np.array_equal(pixels(client, one), pixels(client, three))
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(tiny_dir / "tiny-sdxl", local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    meta = three["meta"]
    image = pipe(
        prompt=meta["prompt"], negative_prompt=meta["negative_prompt"], clip_skip=2,
        image=Image.open(io.BytesIO(png_bytes())).convert("RGB"),
        strength=meta["strength"], num_inference_steps=meta["steps"], guidance_scale=meta["guidance_scale"],
        generator=[torch.Generator("cpu").manual_seed(meta["seed"])],
    ).images[0]
    assert np.array_equal(pixels(client, three), np.asarray(image).astype(int))


def test_clip_skip_expands_textual_inversion_tokens(tiny_dir: Path) -> None:
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_dir / "tiny-sd15", local_files_only=True)
    token = "<tiny-embedding>"
    without = clip_skip_embeds(pipe, f"a {token} cat", 1)
    pipe.load_textual_inversion(str(tiny_dir / "embeddings" / "tiny-embedding.safetensors"))
    with_embedding = clip_skip_embeds(pipe, f"a {token} cat", 1)
    assert not torch.equal(without, with_embedding)


def test_tomesd_is_deterministic_and_removed_after_the_job(
    client: TestClient, body: dict, tiny_dir: Path, tmp_path: Path
) -> None:
    on_1, on_2 = generate(client, body, tomesd="yes"), generate(client, body, tomesd="yes")
    off_after_on = generate(client, body, tomesd="no")
    assert np.array_equal(pixels(client, on_1), pixels(client, on_2))
    assert not np.array_equal(pixels(client, on_1), pixels(client, off_after_on))
    # A "no" job after "yes" jobs equals a "no" job on a pipeline that never saw tomesd.
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_dir / "tiny-sd15", local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    meta = off_after_on["meta"]
    fresh = pipe(
        prompt=meta["prompt"], negative_prompt=meta["negative_prompt"],
        image=Image.open(io.BytesIO(png_bytes())).convert("RGB"),
        strength=meta["strength"], num_inference_steps=meta["steps"], guidance_scale=meta["guidance_scale"],
        generator=[torch.Generator("cpu").manual_seed(meta["seed"])],
    ).images[0]
    assert np.array_equal(pixels(client, off_after_on), np.asarray(fresh).astype(int))


UNCHANGED_STYLES = {"nude", "nsfw", "sex", "negative"}


def test_every_hosted_style_has_a_template() -> None:
    hosted = (Path(__file__).resolve().parents[2] / "pipelines" / "data" / "styles.yaml").read_text()
    assert len(styles()) == 188 and "abstract-expressionism" in styles() and "texture" in styles()
    for name, style in styles().items():
        assert "{prompt}" in style.template, name
        changed = build_prompt("a cat", enhance=False, style=style) != "a cat"
        assert changed is (name not in UNCHANGED_STYLES), name
    assert "Fooocus" not in hosted


def test_styles_through_the_api(client: TestClient, body: dict) -> None:
    anime = generate(client, body, enhance_style="anime")
    assert anime["meta"]["prompt"] == "a red cat, anime illustration, cel shading, clean line art, vivid colours"
    assert anime["meta"]["negative_prompt"] == f" {DEFAULT_NEGATIVE}, {get_style('anime').negative}"
    assert anime["meta"]["enhance_style"] == "anime"
    unknown = generate(client, body, enhance_style="vaporwave-deluxe")
    assert unknown["status"] == "error" and unknown["message"] == "Unknown enhance_style: vaporwave-deluxe"
    plain = generate(client, body, enhance_prompt="no")
    assert plain["meta"]["prompt"] == "a red cat"


def test_instance_prompt_is_prepended(tiny_dir: Path, tmp_path: Path, body: dict) -> None:
    from tests.integration.test_img2img_api import app_client

    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        f"  triggered: {{family: sd15, path: {tiny_dir / 'tiny-sd15'}, instance_prompt: mdjrny-v4 style}}\n"
    )
    with app_client(tiny_dir, tmp_path / "data", config=config) as app:
        answer = app.post(API, json={**body, "model_id": "triggered", "enhance_prompt": "no"}).json()
    assert answer["meta"]["prompt"] == "mdjrny-v4 style a red cat"
