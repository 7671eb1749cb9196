"""clip_skip for SD1.5, computed outside the pipeline.

diffusers 0.42.1's SD1.5 img2img path reads `text_encoder.text_model`, which transformers >= 5.6 removed
(huggingface/diffusers#14124), so any clip_skip crashes there. We compute the embeddings
the way the pipeline would and pass them in as prompt_embeds. SDXL's own path works and is used as is.
"""

from __future__ import annotations

import torch
from diffusers import StableDiffusionImg2ImgPipeline


def skipped_layers(api_clip_skip: int) -> int:
    """The API counts like A1111 (1 = no skip, 2 = one layer skipped); diffusers counts skipped layers."""
    return max(0, api_clip_skip - 1)


def clip_skip_embeds(pipe: StableDiffusionImg2ImgPipeline, prompt: str | list[str], layers: int) -> torch.Tensor:
    """Text embeddings from the hidden state `layers` below the last, through the final layer norm."""
    # Expands textual-inversion tokens (one token -> its vectors) exactly as the pipeline does.
    prompt = pipe.maybe_convert_prompt(prompt, pipe.tokenizer)
    encoder = pipe.text_encoder
    ids = pipe.tokenizer(
        prompt,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(encoder.device)
    hidden = encoder(ids, output_hidden_states=True).hidden_states[-(layers + 1)]
    norm = encoder.text_model.final_layer_norm if hasattr(encoder, "text_model") else encoder.final_layer_norm
    return norm(hidden).to(dtype=encoder.dtype)
