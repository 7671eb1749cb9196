"""The GPU fast path: reduced precision, channels_last, fused QKV projections, optional torch.compile;
and torch's CPU thread count.

Each switch is separate so an operator can turn any one off (settings), and the CPU path with all of
them off is the plain diffusers pipeline (tested to give identical images). torch is imported only where
it is used: Settings import this module, and start-up checks must answer before torch loads.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]


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
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]


def apply_fast_path(pipe: Any, options: FastPathOptions) -> None:
    """Applied once per model load, on the worker thread, after the pipeline is on its device."""
    import torch

    if options.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
    if options.fuse_qkv:
        pipe.fuse_qkv_projections()
    if options.compile:
        # Dynamic shapes: one compiled graph serves every output size instead of recompiling per size.
        pipe.unet = torch.compile(pipe.unet, dynamic=True)
    log.info("fast path for %s: %s", type(pipe).__name__, options)


def torch_threads_for(setting: int, device: str) -> int | None:
    """The intra-op thread count torch should use; None leaves torch's own choice.

    `setting` is SDGATE_TORCH_THREADS: > 0 is taken as is. 0 (automatic) means:
    - CUDA: torch's default. The GPU does the work; CPU threads only feed it.
    - OMP_NUM_THREADS set: torch already follows it (an operator's choice, or Ray's per-replica num_cpus).
    - CPU otherwise: half the CPUs this process may run on (its affinity mask, which honours taskset and
      cpusets, unlike os.cpu_count()), at least 1. torch's default claims every core for one pipeline call,
      but this process also runs the HTTP event loop, image decoding/encoding and the job database, and the
      host often runs more. Every parallel region waits for its slowest thread, so one preempted thread
      stalls all the others: oversubscribed, a call gets much slower (measured: 31.2 s vs 4.9 s for one
      8-step request on a small loaded CPU). With two hardware threads per core, half the CPUs is about the
      physical-core count torch's default picks anyway, so an idle host loses little.
    """
    if setting > 0:
        return setting
    if device != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        usable = os.cpu_count() or 1
    return max(1, usable // 2)


def apply_torch_threads(setting: int, device: str) -> int:
    """Set torch's intra-op threads once, at start-up, before any model loads; returns the count in effect."""
    import torch

    threads = torch_threads_for(setting, device)
    if threads is not None:
        torch.set_num_threads(threads)
    log.info("torch uses %d CPU threads (SDGATE_TORCH_THREADS=%d, device %s)", torch.get_num_threads(), setting, device)
    return torch.get_num_threads()
