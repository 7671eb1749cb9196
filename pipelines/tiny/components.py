"""Tiny random-weight SD1.5 / SDXL img2img pipelines, built offline with the real diffusers classes.

Shapes: attention at full latent resolution (so tomesd has work to do) and
`layers_per_block=2` (so the LDM key numbering used by single-file checkpoints stays valid).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

# A handful of merges so common words become single tokens; the rest fall back to bytes.
_MERGES = ["t h", "th e</w>", "c a", "ca t</w>", "d o", "do g</w>", "r e", "re d</w>", "a n", "an d</w>", "o n</w>"]

# What both tiny UNets share; the block layouts below are what differ between SD1.5 and SDXL.
_TINY_UNET = {"block_out_channels": (32, 64), "layers_per_block": 2, "sample_size": 32, "in_channels": 4,
              "out_channels": 4, "norm_num_groups": 32}

_SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}


def _bytes_to_unicode() -> list[str]:
    # The GPT-2 / CLIP byte-level alphabet: printable bytes map to themselves, the rest to code points above 255.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def write_tokenizer(folder: Path) -> None:
    """Write a 525-token CLIP BPE vocabulary, enough for tests, so no tokenizer is ever downloaded."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _bytes_to_unicode()
    vocab = alphabet + [c + "</w>" for c in alphabet] + [m.replace(" ", "") for m in _MERGES]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n")


def load_tokenizer(folder: Path, pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77, pad_token=pad_token, local_files_only=True)


def _text_config(tokenizer: CLIPTokenizer, **extra: object) -> CLIPTextConfig:
    return CLIPTextConfig(
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=5,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        hidden_act="gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def make_vae(seed: int) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=64,
        norm_num_groups=32,
    )


def make_sd15(tokenizer_dir: Path, seed: int = 0) -> StableDiffusionImg2ImgPipeline:
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **_TINY_UNET,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = make_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    scheduler = PNDMScheduler(**_SD_BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def make_sdxl(tokenizer_dir: Path, seed: int = 10) -> StableDiffusionXLImg2ImgPipeline:
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer_2 = load_tokenizer(tokenizer_dir, pad_token="!")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **_TINY_UNET,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
    )
    vae = make_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2, projection_dim=32))
    scheduler = EulerDiscreteScheduler(**_SD_BETAS, steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
    )


def make_inpaint_unet(unet: UNet2DConditionModel, seed: int) -> UNet2DConditionModel:
    """A 9-channel inpainting UNet (4 latent + 1 mask + 4 masked-image latents) grown from a 4-channel one.

    The base weights are copied; `conv_in` gets 5 new input channels filled with seeded random values
    of the base kernel's scale, so the mask and the masked image actually change the output.
    """
    inpaint = UNet2DConditionModel.from_config({**unet.config, "in_channels": 9})
    state = dict(unet.state_dict())
    base = state["conv_in.weight"]
    generator = torch.Generator().manual_seed(seed)
    extra = torch.randn((base.shape[0], 5, *base.shape[2:]), generator=generator, dtype=base.dtype) * base.std()
    state["conv_in.weight"] = torch.cat([base, extra], dim=1)
    inpaint.load_state_dict(state)
    return inpaint


def make_sd15_inpaint(base: StableDiffusionImg2ImgPipeline, seed: int = 20) -> StableDiffusionInpaintPipeline:
    """The SD1.5 inpainting checkpoint: `base`'s components around a 9-channel UNet."""
    return StableDiffusionInpaintPipeline.from_pipe(base, unet=make_inpaint_unet(base.unet, seed))


def make_sdxl_inpaint(base: StableDiffusionXLImg2ImgPipeline, seed: int = 21) -> StableDiffusionXLInpaintPipeline:
    """The SDXL inpainting checkpoint: `base`'s components around a 9-channel UNet."""
    return StableDiffusionXLInpaintPipeline.from_pipe(base, unet=make_inpaint_unet(base.unet, seed))
