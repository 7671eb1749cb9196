"""`sdgate make-tiny` registers every documented tiny id, and its single-file checkpoint is the same model."""

from pathlib import Path

import torch
from diffusers import StableDiffusionImg2ImgPipeline

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
                     "ip-adapter/models/ip-adapter_sd15.safetensors", "tiny-sd15-single.safetensors"):
        assert (tmp_path / relative).read_bytes() == (tiny_dir / relative).read_bytes(), relative
