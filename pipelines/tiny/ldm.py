"""Write an SD1.5 pipeline as one original-layout (LDM / civitai) .safetensors checkpoint.

Written by us because the diffusers wheel ships only the LDM -> diffusers direction; its repo script is
hard-coded to 4 UNet levels. This inverse covers the shapes `make-tiny` builds (`layers_per_block=2`),
and the test suite proves it by loading the result with `from_single_file` and comparing every tensor.
"""

from __future__ import annotations

import re

import torch
from diffusers import StableDiffusionImg2ImgPipeline

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_UNET_FIXED = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}


def _rename_resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_RESNET.get(head, head)}.{tail}"


def _unet_key(key: str, up_has_attention: list[bool]) -> str:
    for src, dst in _UNET_FIXED.items():
        if key.startswith(src):
            return dst + key[len(src) :]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        block = f"input_blocks.{3 * i + j + 1}"
        return f"{block}.0.{_rename_resnet(rest)}" if kind == "resnets" else f"{block}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{3 * (int(m[1]) + 1)}.0.op.{m[2]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        block = f"output_blocks.{3 * i + j}"
        return f"{block}.0.{_rename_resnet(rest)}" if kind == "resnets" else f"{block}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        i = int(m[1])
        return f"output_blocks.{3 * i + 2}.{2 if up_has_attention[i] else 1}.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[1])}.{_rename_resnet(m[2])}"
    if key.startswith("mid_block.attentions.0."):
        return "middle_block.1." + key[len("mid_block.attentions.0.") :]
    raise ValueError(f"no LDM name for UNet key {key}")


_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _vae_key(key: str, levels: int) -> str:
    key = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.upsample.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)", key):
        return f"{m[1]}.mid.attn_1.{_VAE_ATTN[m[2]]}.{m[3]}"
    return key


def to_ldm_state_dict(pipe: StableDiffusionImg2ImgPipeline) -> dict[str, torch.Tensor]:
    """Rename an SD1.5 pipeline's UNet, VAE and CLIP-L weights into one original-layout state dict."""
    up_has_attention = ["CrossAttn" in t for t in pipe.unet.config.up_block_types]
    out: dict[str, torch.Tensor] = {}
    for key, value in pipe.unet.state_dict().items():
        out["model.diffusion_model." + _unet_key(key, up_has_attention)] = value
    levels = len(pipe.vae.config.block_out_channels)
    for key, value in pipe.vae.state_dict().items():
        ldm = _vae_key(key, levels)
        # The original VAE mid-block attention uses 1x1 convolutions where diffusers uses linear layers.
        if ".mid.attn_1." in ldm and ldm.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]
        out["first_stage_model." + ldm] = value
    for key, value in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 saves CLIPTextModel flat; the original layout nests it under text_model.
        nested = key if key.startswith("text_model.") else "text_model." + key
        out["cond_stage_model.transformer." + nested] = value
    return {k: v.contiguous() for k, v in out.items()}
