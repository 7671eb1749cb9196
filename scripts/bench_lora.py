"""LoRA switch cost as a ratio to one generation on the same tiny model (CPU; a benchmark, not a test).

    .venv/bin/python scripts/bench_lora.py [--repeats 5]

Prints the median of: one plain generation, a first LoRA load + activation (from disk), and a cached
switch between two loaded LoRAs, each divided by the generation time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from pipelines.adapters import AdapterStore, activate_loras
from pipelines.config import load_config
from pipelines.generate import run
from pipelines.registry import ModelRegistry
from pipelines.tasks.img2img import Img2ImgSpec
from pipelines.tiny import make_tiny


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(make_tiny(Path(tmp) / "tiny"))
        registry = ModelRegistry(config, Path(tmp))
        store = AdapterStore(config, Path(tmp), "cpu", torch.float32)
        spec = Img2ImgSpec("tiny-sd15", "a cat", "", 32, 32, init_image=Image.new("RGB", (32, 32), (90, 20, 200)), steps=8)
        run(registry.get("tiny-sd15"), spec, store)  # warm-up
        generation = statistics.median(timed(lambda: run(registry.get("tiny-sd15"), spec, store))
                                       for _ in range(args.repeats))
        first_loads, switches = [], []
        for _ in range(args.repeats):
            registry = ModelRegistry(config, Path(tmp))  # a fresh model: no LoRA in memory
            model = registry.get("tiny-sd15")
            first_loads.append(timed(lambda m=model: activate_loras(m, store, (("tiny-lora-a", 1.0),), keep=8)))
            activate_loras(model, store, (("tiny-lora-b", 1.0),), keep=8)
            switches.append(timed(lambda m=model: activate_loras(m, store, (("tiny-lora-a", 0.7),), keep=8)))
    result = {
        "generation_s": round(generation, 4),
        "lora_first_load_ratio": round(statistics.median(first_loads) / generation, 3),
        "lora_cached_switch_ratio": round(statistics.median(switches) / generation, 4),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
