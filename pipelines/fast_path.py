"""The GPU fast path: reduced precision, channels_last, fused QKV projections, optional torch.compile.

Each switch is separate so an operator can turn any one off (settings), and the CPU path with all of
them off is the plain diffusers pipeline (tested to give identical images).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class FastPathOptions:
    precision: Precision = "fp32"
    channels_last: bool = False
    # Fusing changes the attention modules LoRA targets (to_q/to_k/to_v), so it is off unless asked for.
    fuse_qkv: bool = False
    compile: bool = False

    @classmethod
    def for_device(cls, device: str) -> FastPathOptions:
        if device == "cuda":
            # fp16 everywhere; diffusers upcasts the SDXL VAE (force_upcast) where fp16 would overflow.
            return cls(precision="fp16", channels_last=True)
        return cls()

    def dtype(self, device: str) -> torch.dtype:
        return _DTYPES[self.precision]


def apply_fast_path(pipe: Any, options: FastPathOptions) -> None:
    """Applied once per model load, on the worker thread, after the pipeline is on its device."""
    if options.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
    if options.fuse_qkv:
        pipe.fuse_qkv_projections()
    if options.compile:
        # Dynamic shapes: one compiled graph serves every output size instead of recompiling per size.
        pipe.unet = torch.compile(pipe.unet, dynamic=True)
    log.info("fast path for %s: %s", type(pipe).__name__, options)
