"""Tiny LoRA, textual-inversion and IP-Adapter files for the tiny pipelines."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

_UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
_TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
LORA_RANK = 4


def _linear_modules(model: torch.nn.Module, targets: tuple[str, ...]) -> dict[str, torch.nn.Linear]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.endswith(targets)
    }


def random_lora(pipe: StableDiffusionImg2ImgPipeline, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Random rank-4 (down, up) pairs keyed by "unet.<module path>" / "text_encoder.<module path>"."""
    generator = torch.Generator().manual_seed(seed)
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for prefix, model, targets in (("unet", pipe.unet, _UNET_TARGETS), ("text_encoder", pipe.text_encoder, _TEXT_TARGETS)):
        for name, linear in _linear_modules(model, targets).items():
            down = torch.randn(LORA_RANK, linear.in_features, generator=generator) * 0.3
            up = torch.randn(linear.out_features, LORA_RANK, generator=generator) * 0.3
            pairs[f"{prefix}.{name}"] = (down, up)
    return pairs


def save_lora_diffusers(pipe: StableDiffusionImg2ImgPipeline, pairs: dict, folder: Path, weight_name: str) -> None:
    """Save in diffusers/peft layout through the pipeline's own `save_lora_weights`."""
    layers: dict[str, dict[str, torch.Tensor]] = {"unet": {}, "text_encoder": {}}
    for key, (down, up) in pairs.items():
        component, path = key.split(".", 1)
        layers[component][f"{path}.lora_A.weight"] = down
        layers[component][f"{path}.lora_B.weight"] = up
    type(pipe).save_lora_weights(
        str(folder),
        unet_lora_layers=layers["unet"],
        text_encoder_lora_layers=layers["text_encoder"],
        weight_name=weight_name,
    )


def save_lora_kohya(pairs: dict, path: Path) -> None:
    """Save in the kohya / civitai layout (lora_unet_* / lora_te_*), alpha = rank so the scale is 1."""
    state: dict[str, torch.Tensor] = {}
    for key, (down, up) in pairs.items():
        component, module = key.split(".", 1)
        if component == "unet":
            name = "lora_unet_" + module.replace(".", "_")
        else:
            name = "lora_te_text_model_" + module.replace(".", "_")
        state[f"{name}.lora_down.weight"] = down.contiguous()
        state[f"{name}.lora_up.weight"] = up.contiguous()
        state[f"{name}.alpha"] = torch.tensor(float(LORA_RANK))
    save_file(state, str(path))


def save_embedding(dim: int, token: str, path: Path, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    save_file({token: torch.randn(dim, generator=generator)}, str(path))


def _image_encoder(seed: int) -> CLIPVisionModelWithProjection:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=4,
        projection_dim=32,
    )
    return CLIPVisionModelWithProjection(config)


def _ip_adapter_state(unet: torch.nn.Module, embed_dim: int, seed: int) -> dict[str, torch.Tensor]:
    """A basic 4-token IP-Adapter; `k` counts cross-attention processors as diffusers' loader walks them."""
    generator = torch.Generator().manual_seed(seed)
    cad = unet.config.cross_attention_dim
    channels = list(unet.config.block_out_channels)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.1

    state = {
        "image_proj.proj.weight": rand(4 * cad, embed_dim),
        "image_proj.proj.bias": rand(4 * cad),
        "image_proj.norm.weight": torch.ones(cad),
        "image_proj.norm.bias": torch.zeros(cad),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name.split(".")[1])]
        else:
            hidden = channels[int(name.split(".")[1])]
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = rand(hidden, cad)
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = rand(hidden, cad)
        key_id += 2
    return state


def save_ip_adapter(
    pipe: StableDiffusionImg2ImgPipeline | StableDiffusionXLImg2ImgPipeline,
    root: Path,
    subfolder: str,
    weight_name: str,
    seed: int,
) -> None:
    """Write <root>/<subfolder>/<weight_name> plus <root>/<subfolder>/image_encoder, the h94/IP-Adapter layout."""
    folder = root / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    encoder = _image_encoder(seed)
    encoder.save_pretrained(str(folder / "image_encoder"), safe_serialization=True)
    save_file(_ip_adapter_state(pipe.unet, encoder.config.projection_dim, seed + 1), str(folder / weight_name))


def save_safety_checker(folder: Path, seed: int) -> None:
    """A tiny StableDiffusionSafetyChecker + its image processor: plumbing, not real detection."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 4},
        projection_dim=32,
    )
    StableDiffusionSafetyChecker(config).save_pretrained(str(folder), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(folder))
