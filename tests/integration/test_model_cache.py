"""The registry on real tiny pipelines: byte budgets, RAM parking without disk reads, pins; fast-path switches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from PIL import Image

from pipelines import generate
from pipelines.config import load_config
from pipelines.fast_path import FastPathOptions
from pipelines.registry import ModelRegistry
from pipelines.tasks.img2img import Img2ImgSpec

INIT = Image.new("RGB", (32, 32), (150, 60, 30))


def registry(tiny_dir: Path, tmp_path: Path, events: list[str], loads: list[float], **kwargs: object) -> ModelRegistry:
    return ModelRegistry(load_config(tiny_dir / "models.yaml"), tmp_path, "cpu", max_loaded=4,
                         on_load=loads.append, on_event=events.append, **kwargs)  # type: ignore[arg-type]


def test_budgets_park_in_ram_and_never_reread_disk(tiny_dir: Path, tmp_path: Path) -> None:
    events: list[str] = []
    loads: list[float] = []
    probe = registry(tiny_dir, tmp_path, [], [])
    size = probe.get("tiny-sd15").size_bytes
    reg = registry(tiny_dir, tmp_path, events, loads, device_budget=int(size * 1.5), host_budget=int(size * 1.5))
    first = reg.get("tiny-sd15")
    reg.get("tiny-sd15-single")
    assert reg.loaded_ids() == ["tiny-sd15-single"] and reg.parked_ids() == ["tiny-sd15"]
    again = reg.get("tiny-sd15")
    assert again is first and len(loads) == 2  # back from RAM: the same objects, no third load
    assert events == ["miss", "miss", "evict_to_host", "hit_host", "evict_to_host"]
    reg.get("tiny-sdxl")  # the host budget holds one parked model: the oldest goes back to disk
    assert "evict_to_disk" in events and len(reg.parked_ids()) == 1
    reg.get("tiny-sdxl")
    assert events[-1] == "hit_device"


def test_pinned_models_stay(tiny_dir: Path, tmp_path: Path) -> None:
    reg = registry(tiny_dir, tmp_path, [], [], device_budget=1, host_budget=1, pinned=frozenset({"tiny-sd15"}))
    reg.get("tiny-sd15")
    reg.get("tiny-sdxl")
    reg.get("tiny-sd15-single")
    assert "tiny-sd15" in reg.loaded_ids()
    assert "tiny-sdxl" not in reg.loaded_ids() + reg.parked_ids()


def run(reg: ModelRegistry) -> np.ndarray:
    spec = Img2ImgSpec("tiny-sd15", "a cat", "blurry", 32, 32, init_image=INIT, steps=4, seed=3)
    return np.asarray(generate.run(reg.get("tiny-sd15"), spec).images[0])


def test_cpu_path_with_every_optimisation_off_is_plain_diffusers(tiny_dir: Path, tmp_path: Path) -> None:
    default = run(registry(tiny_dir, tmp_path, [], []))
    all_off = run(registry(tiny_dir, tmp_path, [], [], fast_path=FastPathOptions()))
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_dir / "tiny-sd15", local_files_only=True)
    from diffusers import UniPCMultistepScheduler

    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    plain = pipe("a cat", negative_prompt="blurry", image=INIT, num_inference_steps=4, strength=0.7,
                 generator=[torch.Generator().manual_seed(3)]).images[0]
    assert np.array_equal(default, all_off) and np.array_equal(all_off, np.asarray(plain))


@pytest.mark.parametrize("options", [FastPathOptions(channels_last=True), FastPathOptions(fuse_qkv=True)])
def test_each_switch_runs_and_stays_close(tiny_dir: Path, tmp_path: Path, options: FastPathOptions) -> None:
    baseline = run(registry(tiny_dir, tmp_path, [], [], fast_path=FastPathOptions())).astype(int)
    switched = run(registry(tiny_dir, tmp_path, [], [], fast_path=options)).astype(int)
    assert np.abs(baseline - switched).max() <= 2  # float reordering only


def test_loads_in_parallel_threads_leave_no_meta_tensors(tiny_dir: Path, tmp_path: Path) -> None:
    """Two workers loading at once (two devices, or a server stopping while the next starts) must not leave
    accelerate's process-wide init_empty_weights patch behind, after which every load makes meta tensors."""
    import threading

    import torch

    original = torch.nn.Module.register_parameter
    config = load_config(tiny_dir / "models.yaml")
    for _ in range(3):
        registries = [ModelRegistry(config, tmp_path, max_loaded=2) for _ in range(2)]
        threads = [threading.Thread(target=registry.get, args=(model_id,))
                   for registry, model_id in zip(registries, ("tiny-sd15", "tiny-sdxl"), strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert torch.nn.Module.register_parameter is original
    pipe = ModelRegistry(config, tmp_path).get("tiny-sd15").pipe
    assert all(p.device.type != "meta" for p in pipe.unet.parameters())
