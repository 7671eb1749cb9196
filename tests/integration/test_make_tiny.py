"""`sdgate make-tiny` registers every documented tiny id, and its single-file checkpoint is the same model."""

from pathlib import Path

import pytest
import torch
from diffusers import (
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)

from pipelines.config import load_config


def test_models_yaml_registers_the_contract_ids(tiny_dir: Path) -> None:
    config = load_config(tiny_dir / "models.yaml")
    assert {"tiny-sd15", "tiny-sdxl", "tiny-sd15-single"} <= set(config.models)
    assert {"tiny-lora-a", "tiny-lora-b"} <= set(config.loras)
    assert set(config.vaes) == {"tiny-vae"}
    assert set(config.embeddings) == {"tiny-embedding"} and config.embeddings["tiny-embedding"].token
    assert set(config.ip_adapters) == {"ip-adapter_sd15", "ip-adapter_sdxl"}
    for section in (config.models, config.loras, config.vaes, config.embeddings, config.ip_adapters):
        for entry in section.values():
            assert (entry.path or entry.file).exists()


def test_single_file_checkpoint_equals_the_diffusers_folder(tiny_dir: Path) -> None:
    folder = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_dir / "tiny-sd15", local_files_only=True)
    single = StableDiffusionImg2ImgPipeline.from_single_file(
        str(tiny_dir / "tiny-sd15-single.safetensors"),
        config=str(tiny_dir / "tiny-sd15-single-config"),
        local_files_only=True,
    )
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(folder, name).state_dict(), getattr(single, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_make_tiny_is_deterministic(tiny_dir: Path, tmp_path: Path) -> None:
    from pipelines.tiny import make_tiny

    make_tiny(tmp_path)
    for relative in ("tiny-sd15/unet/diffusion_pytorch_model.safetensors", "loras/tiny-lora-b.safetensors",
                     "ip-adapter/models/ip-adapter_sd15.safetensors", "tiny-sd15-single.safetensors",
                     "tiny-sd15-inpaint/unet/diffusion_pytorch_model.safetensors",
                     "tiny-sdxl-inpaint/unet/diffusion_pytorch_model.safetensors"):
        assert (tmp_path / relative).read_bytes() == (tiny_dir / relative).read_bytes(), relative


def test_inpaint_and_realtime_ids_are_registered_with_their_flags(tiny_dir: Path) -> None:
    config = load_config(tiny_dir / "models.yaml")
    assert {"tiny-sd15-inpaint", "tiny-sdxl-inpaint", "tiny-realtime"} <= set(config.models)
    assert [k for k, m in config.models.items() if m.inpainting] == ["tiny-sd15-inpaint", "tiny-sdxl-inpaint"]
    assert config.models["tiny-sd15-inpaint"].family == "sd15" and config.models["tiny-sdxl-inpaint"].family == "sdxl"
    realtime = config.models["tiny-realtime"]
    assert realtime.realtime and not realtime.inpainting and realtime.family == "sd15"
    assert realtime.path == tiny_dir / "tiny-sd15"
    assert realtime.realtime_defaults.steps == 2 and realtime.realtime_defaults.guidance_scale == 1.0
    assert realtime.realtime_defaults.scheduler == "EulerAncestralDiscreteScheduler"
    assert config.realtime_model_id() == "tiny-realtime"
    assert config.default_model_id() == "tiny-sd15"


@pytest.mark.parametrize(
    "model_id, inpaint_cls, img2img_cls",
    [
        ("tiny-sd15-inpaint", StableDiffusionInpaintPipeline, StableDiffusionImg2ImgPipeline),
        ("tiny-sdxl-inpaint", StableDiffusionXLInpaintPipeline, StableDiffusionXLImg2ImgPipeline),
    ],
)
def test_inpaint_folders_are_9_channel_inpainting_checkpoints(
    tiny_dir: Path, model_id: str, inpaint_cls: type, img2img_cls: type
) -> None:
    folder = tiny_dir / model_id
    pipe = inpaint_cls.from_pretrained(folder, local_files_only=True)
    assert type(pipe) is inpaint_cls and pipe.unet.config.in_channels == 9
    # The registry loads every model as img2img and switches with from_pipe: the 9-channel UNet survives that.
    base = img2img_cls.from_pretrained(folder, local_files_only=True)
    assert base.unet.config.in_channels == 9
    assert inpaint_cls.from_pipe(base).unet is base.unet
    # The mask channels carry seeded, non-zero weights; the latent channels are the base model's.
    base_unet = img2img_cls.from_pretrained(tiny_dir / model_id.removesuffix("-inpaint"), local_files_only=True).unet
    weight = pipe.unet.conv_in.weight
    assert torch.equal(weight[:, :4], base_unet.conv_in.weight)
    assert weight[:, 4:].abs().sum() > 0
