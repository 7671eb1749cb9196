"""`sdgate make-tiny`: every artifact the test suite needs, built offline and deterministically.

Everything is written with the real save functions (save_pretrained, save_lora_weights, safetensors),
so the loaders that read real checkpoints read these too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from pipelines.tiny.adapters import (
    random_lora,
    save_embedding,
    save_ip_adapter,
    save_lora_diffusers,
    save_lora_kohya,
    save_safety_checker,
)
from pipelines.tiny.components import (
    make_sd15,
    make_sd15_inpaint,
    make_sdxl,
    make_sdxl_inpaint,
    make_vae,
    write_tokenizer,
)
from pipelines.tiny.ldm import to_ldm_state_dict

EMBEDDING_TOKEN = "<tiny-embedding>"


def _write_config_only(pipe: torch.nn.Module, folder: Path) -> None:
    """A weight-free diffusers folder: what `from_single_file(config=...)` needs to stay offline."""
    pipe.save_pretrained(str(folder), safe_serialization=True)
    for weights in folder.rglob("*.safetensors"):
        weights.unlink()


def _models_yaml() -> dict:
    return {
        "models": {
            "tiny-sd15": {"family": "sd15", "path": "tiny-sd15", "default": True, "name": "Tiny SD1.5 (random weights)"},
            "tiny-sdxl": {"family": "sdxl", "path": "tiny-sdxl", "name": "Tiny SDXL (random weights)"},
            "tiny-sd15-single": {
                "family": "sd15",
                "file": "tiny-sd15-single.safetensors",
                "config": "tiny-sd15-single-config",
                "name": "Tiny SD1.5, single-file checkpoint",
            },
            "tiny-sd15-inpaint": {
                "family": "sd15",
                "path": "tiny-sd15-inpaint",
                "inpainting": True,
                "name": "Tiny SD1.5 inpainting (random weights, 9-channel UNet)",
            },
            "tiny-sdxl-inpaint": {
                "family": "sdxl",
                "path": "tiny-sdxl-inpaint",
                "inpainting": True,
                "name": "Tiny SDXL inpainting (random weights, 9-channel UNet)",
            },
            "tiny-realtime": {
                "family": "sd15",
                "path": "tiny-sd15",
                "realtime": True,
                "realtime_defaults": {"steps": 2, "guidance_scale": 1.0, "scheduler": "EulerAncestralDiscreteScheduler"},
                "name": "Tiny realtime (random weights)",
            },
        },
        "loras": {
            "tiny-lora-a": {"family": "sd15", "file": "loras/tiny-lora-a.safetensors"},
            "tiny-lora-b": {"family": "sd15", "file": "loras/tiny-lora-b.safetensors"},
            "tiny-lora-a-kohya": {"family": "sd15", "file": "loras/tiny-lora-a-kohya.safetensors"},
        },
        "vaes": {"tiny-vae": {"family": "sd15", "path": "tiny-vae"}},
        "embeddings": {
            "tiny-embedding": {"family": "sd15", "file": "embeddings/tiny-embedding.safetensors", "token": EMBEDDING_TOKEN}
        },
        "ip_adapters": {
            "ip-adapter_sd15": {
                "family": "sd15",
                "path": "ip-adapter",
                "subfolder": "models",
                "weight": "ip-adapter_sd15.safetensors",
                "image_encoder": "models/image_encoder",
            },
            "ip-adapter_sdxl": {
                "family": "sdxl",
                "path": "ip-adapter",
                "subfolder": "sdxl_models",
                "weight": "ip-adapter_sdxl.safetensors",
                "image_encoder": "sdxl_models/image_encoder",
            },
        },
    }


def make_tiny(out: Path) -> Path:
    """Build all tiny artifacts under `out` and return the path of the models.yaml that registers them."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = out / "tokenizer-src"
    write_tokenizer(tokenizer_dir)

    sd15 = make_sd15(tokenizer_dir)
    sd15.save_pretrained(str(out / "tiny-sd15"), safe_serialization=True)
    sdxl = make_sdxl(tokenizer_dir)
    sdxl.save_pretrained(str(out / "tiny-sdxl"), safe_serialization=True)
    make_sd15_inpaint(sd15).save_pretrained(str(out / "tiny-sd15-inpaint"), safe_serialization=True)
    make_sdxl_inpaint(sdxl).save_pretrained(str(out / "tiny-sdxl-inpaint"), safe_serialization=True)

    save_file(to_ldm_state_dict(sd15), str(out / "tiny-sd15-single.safetensors"))
    _write_config_only(sd15, out / "tiny-sd15-single-config")

    make_vae(seed=99).save_pretrained(str(out / "tiny-vae"), safe_serialization=True)

    loras = out / "loras"
    loras.mkdir(exist_ok=True)
    pairs_a = random_lora(sd15, seed=1)
    save_lora_diffusers(sd15, pairs_a, loras, "tiny-lora-a.safetensors")
    save_lora_kohya(pairs_a, loras / "tiny-lora-a-kohya.safetensors")
    save_lora_kohya(random_lora(sd15, seed=2), loras / "tiny-lora-b.safetensors")

    (out / "embeddings").mkdir(exist_ok=True)
    dim = sd15.text_encoder.config.hidden_size
    save_embedding(dim, EMBEDDING_TOKEN, out / "embeddings" / "tiny-embedding.safetensors", seed=3)

    save_ip_adapter(sd15, out / "ip-adapter", "models", "ip-adapter_sd15.safetensors", seed=4)
    save_ip_adapter(sdxl, out / "ip-adapter", "sdxl_models", "ip-adapter_sdxl.safetensors", seed=6)

    # Not a registry entry: a server setting (SDGATE_SAFETY_CHECKER_PATH) points at it.
    save_safety_checker(out / "safety-checker", seed=8)

    shutil.rmtree(tokenizer_dir)
    config_path = out / "models.yaml"
    config_path.write_text(yaml.safe_dump(_models_yaml(), sort_keys=False))
    return config_path
