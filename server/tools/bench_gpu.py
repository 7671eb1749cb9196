"""GPU suite of `sdgate bench` (CUDA only): full-size SD1.5 and SDXL architectures with random weights.

Speed does not depend on weight values, and no weights can be downloaded where this runs, so the
pipelines are built from the published architecture settings (listed below) with random weights and
the tiny hand-built tokenizer (token ids only index the embedding table; the vocabulary size is real).
Eager fp16 diffusers and sdgate's fast path run in the same process on the same card.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionXLImg2ImgPipeline,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from pipelines.fast_path import FastPathOptions, apply_fast_path
from pipelines.tiny.components import load_tokenizer, write_tokenizer
from server.tools.timing import p50

# Public architecture settings (SD1.5 and SDXL base model configs).
SD15_UNET = dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                 attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SDXL_UNET = dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
                 attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, projection_dim=768,
              hidden_act="quick_gelu", vocab_size=49408, max_position_embeddings=77)
CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
              projection_dim=1280, hidden_act="gelu", vocab_size=49408, max_position_embeddings=77)
# Dense fp16 FLOPs per request, 31 steps at strength 0.7, CFG, one sample (counted on the meta device).
FLOPS_PER_REQUEST = {("sd15", 512): 37e12, ("sdxl", 1024): 299e12}
STEPS, STRENGTH = 31, 0.7


def _pipeline(family: str, tokenizer_dir: Path) -> Any:
    tokenizer = load_tokenizer(tokenizer_dir)
    scheduler = UniPCMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    if family == "sd15":
        return StableDiffusionImg2ImgPipeline(
            vae=AutoencoderKL(**VAE), text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)), tokenizer=tokenizer,
            unet=UNet2DConditionModel(**SD15_UNET), scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
    return StableDiffusionXLImg2ImgPipeline(
        vae=AutoencoderKL(**VAE, force_upcast=False), text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)), tokenizer=tokenizer,
        tokenizer_2=load_tokenizer(tokenizer_dir, pad_token="!"), unet=UNet2DConditionModel(**SDXL_UNET),
        scheduler=scheduler, requires_aesthetics_score=False)


def _time(pipe: Any, size: int, samples: int, repeats: int) -> float:
    image = Image.new("RGB", (size, size), (120, 90, 60))

    def once() -> None:
        pipe("a photo", image=image, strength=STRENGTH, num_inference_steps=STEPS, num_images_per_prompt=samples,
             generator=[torch.Generator("cpu").manual_seed(i) for i in range(samples)])
        torch.cuda.synchronize()

    once()  # warm-up (and compilation, when compiled)
    return p50(once, repeats)


def peak_tflops() -> float:
    """The card's measured dense fp16 matmul rate, the denominator for 'share of peak'."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    return 20 * 2 * 8192**3 / (time.perf_counter() - started) / 1e12


def gpu_suite(quick: bool) -> dict[str, Any]:
    repeats = 3 if quick else 7
    fast = FastPathOptions(precision="fp16", channels_last=True, fuse_qkv=True, compile=True)
    results: dict[str, Any] = {"card": torch.cuda.get_device_name(0), "peak_tflops_fp16": round(peak_tflops(), 1)}
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer(Path(tmp))
        for family, size in (("sd15", 512), ("sdxl", 1024)):
            torch.manual_seed(0)
            pipe = _pipeline(family, Path(tmp)).to("cuda", torch.float16)
            pipe.set_progress_bar_config(disable=True)
            for samples in (1, 4):
                eager = _time(pipe, size, samples, repeats)
                results[f"{family}_{size}_x{samples}_eager_s"] = round(eager, 4)
            apply_fast_path(pipe, fast)
            for samples in (1, 4):
                tuned = _time(pipe, size, samples, repeats)
                eager = results[f"{family}_{size}_x{samples}_eager_s"]
                steps = int(STEPS * STRENGTH)
                results[f"{family}_{size}_x{samples}_fast_s"] = round(tuned, 4)
                results[f"{family}_{size}_x{samples}_speedup"] = round(eager / tuned, 3)
                results[f"{family}_{size}_x{samples}_it_per_s"] = round(steps / tuned, 2)
                flops = FLOPS_PER_REQUEST.get((family, size), 0.0) * samples
                results[f"{family}_{size}_x{samples}_share_of_peak"] = round(
                    flops / tuned / 1e12 / results["peak_tflops_fp16"], 3)
            del pipe
            torch.cuda.empty_cache()
    return results
