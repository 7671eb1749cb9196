"""`sdgate bench`: speed figures as ratios measured in one run (BENCHMARKS.md).

CPU suite (any machine, tiny models):
  1. HTTP end-to-end p50 / direct diffusers p50, same model and parameters
  2. model switch from RAM / one generation, and from disk / one generation
  3. cached LoRA switch / one generation
  4. throughput of 4 concurrent compatible requests, batching on / off
  5. init-image decode + output encode share of an end-to-end request
GPU suite (CUDA only): server/tools/bench_gpu.py; both time with timing.p50.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from server.tools.timing import p50

SIZE, STEPS = 64, 20


def _init_png(size: int = SIZE) -> bytes:
    image = Image.new("RGB", (size, size))
    image.putdata([((x * 4) % 256, (y * 4) % 256, 128) for y in range(size) for x in range(size)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _body(init_b64: str, seed: int = 1, prompt: str = "a red cat") -> dict[str, Any]:
    return {"key": "bench", "model_id": "tiny-sd15", "prompt": prompt, "init_image": init_b64, "base64": "yes",
            "num_inference_steps": STEPS, "strength": 0.7, "seed": seed, "safety_checker": "no", "tomesd": "no",
            "use_karras_sigmas": "no", "enhance_prompt": "no", "negative_prompt": "blurry"}


def cpu_suite(tiny: Path, work: Path, repeats: int) -> dict[str, float]:
    from diffusers import StableDiffusionImg2ImgPipeline, UniPCMultistepScheduler
    from fastapi.testclient import TestClient

    from pipelines.adapters import AdapterStore, activate_loras
    from pipelines.config import load_config
    from pipelines.images import decode_image
    from pipelines.postprocess.encode import to_png
    from pipelines.registry import ModelRegistry
    from server.http.app import create_app
    from server.ops.settings import Settings

    init = _init_png()
    init_b64 = base64.b64encode(init).decode()
    image = Image.open(io.BytesIO(init)).convert("RGB")

    # 1. Direct diffusers call vs the same call through HTTP, the job table, the worker and storage.
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny / "tiny-sd15", local_files_only=True)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def direct() -> None:
        pipe("a red cat", negative_prompt=" blurry", image=image, strength=0.7, num_inference_steps=STEPS,
             generator=[torch.Generator().manual_seed(1)])

    direct()
    direct_p50 = p50(direct, repeats)

    def settings(**extra: Any) -> Settings:
        return Settings(config=tiny / "models.yaml", data_dir=work / f"data-{len(extra)}-{time.time_ns()}",
                        device="cpu", public_url="http://testserver", **extra)

    with TestClient(create_app(settings(batching=False))) as client:
        client.post("/api/v6/images/img2img", json=_body(init_b64))  # loads the model
        http_p50 = p50(lambda: client.post("/api/v6/images/img2img", json=_body(init_b64)).json(), repeats)

    # 2. Model switches: from host RAM (device budget holds one model) and from disk.
    config = load_config(tiny / "models.yaml")
    probe = ModelRegistry(config, work, "cpu")
    size = probe.get("tiny-sd15").size_bytes
    parked = ModelRegistry(config, work, "cpu", device_budget=int(size * 1.5), host_budget=size * 10)
    parked.get("tiny-sd15")
    parked.get("tiny-sd15-single")
    ram_switch = p50(lambda: (parked.get("tiny-sd15"), parked.get("tiny-sd15-single")), repeats) / 2

    def from_disk() -> None:
        ModelRegistry(config, work, "cpu").get("tiny-sd15")

    disk_switch = p50(from_disk, repeats)

    # 3. A cached LoRA switch (both adapters already in memory).
    model = probe.get("tiny-sd15")
    store = AdapterStore(config, work, "cpu", torch.float32)
    activate_loras(model, store, (("tiny-lora-a", 1.0),), keep=8)
    activate_loras(model, store, (("tiny-lora-b", 1.0),), keep=8)
    lora_switch = p50(lambda: (activate_loras(model, store, (("tiny-lora-a", 1.0),), keep=8),
                               activate_loras(model, store, (("tiny-lora-b", 0.5),), keep=8)), repeats) / 2

    # 4. Throughput with 4 concurrent compatible requests, batching on vs off. At 32 px, where a tiny
    # model's step is dispatch-bound as a real model's is on a GPU; at 64 px the CPU is compute-bound
    # and batching cannot help (both figures are reported).
    small_b64 = base64.b64encode(_init_png(32)).decode()

    def throughput(batching: bool, init_b64: str) -> float:
        with TestClient(create_app(settings(batching=batching, batch_window=0.05))) as client:
            client.post("/api/v6/images/img2img", json=_body(init_b64))
            with ThreadPoolExecutor(4) as pool:
                started = time.perf_counter()
                rounds = max(2, repeats // 2)
                for round_ in range(rounds):
                    bodies = [_body(init_b64, seed=round_ * 4 + i, prompt=f"cat {i}") for i in range(4)]
                    list(pool.map(lambda b: client.post("/api/v6/images/img2img", json=b).json(), bodies))
                return 4 * rounds / (time.perf_counter() - started)

    batched, unbatched = throughput(True, small_b64), throughput(False, small_b64)
    batched_64, unbatched_64 = throughput(True, init_b64), throughput(False, init_b64)

    # 6. Realtime latency: a realtime text2img (the tiny realtime model: same architecture, its few-step
    # defaults) against an ordinary 31-step text2img, both end to end over HTTP.
    with TestClient(create_app(settings(batching=False))) as client:
        text = {"key": "bench", "prompt": "a red cat", "width": SIZE, "height": SIZE, "safety_checker": "no",
                "enhance_prompt": "no", "tomesd": "no", "base64": "yes"}
        ordinary = {**text, "model_id": "tiny-sd15", "num_inference_steps": 31}
        client.post("/api/v6/realtime/text2img", json=text)  # loads both models
        client.post("/api/v6/images/text2img", json=ordinary)
        realtime_p50 = p50(lambda: client.post("/api/v6/realtime/text2img", json=text).json(), repeats)
        ordinary_p50 = p50(lambda: client.post("/api/v6/images/text2img", json=ordinary).json(), repeats)

    # 5. Decode of the init image plus PNG encode of the output, as a share of one end-to-end request.
    output = pipe("a red cat", image=image, num_inference_steps=STEPS, strength=0.7).images[0]
    codec = p50(lambda: (decode_image(init), to_png(output)), repeats * 5)

    return {
        "generation_s": round(direct_p50, 4),
        "http_over_direct": round(http_p50 / direct_p50, 3),
        "ram_switch_over_generation": round(ram_switch / direct_p50, 4),
        "disk_switch_over_generation": round(disk_switch / direct_p50, 3),
        "lora_cached_switch_over_generation": round(lora_switch / direct_p50, 4),
        "batching_throughput_on_over_off": round(batched / unbatched, 3),
        "batching_throughput_on_over_off_64px": round(batched_64 / unbatched_64, 3),
        "codec_share_of_request": round(codec / http_p50, 4),
        "realtime_over_ordinary_text2img": round(realtime_p50 / ordinary_p50, 3),
    }


TARGETS = {
    "http_over_direct": ("<=", 1.05),
    "ram_switch_over_generation": ("<=", 0.1),
    "batching_throughput_on_over_off": (">=", 1.5),
}


def render(results: dict[str, Any]) -> str:
    lines = [f"{'measure':40} {'value':>10}  target", "-" * 62]
    flat = {k: v for k, v in results.items() if not isinstance(v, dict)}
    flat.update({f"gpu.{k}": v for k, v in results.get("gpu", {}).items()})
    for name, value in flat.items():
        target = TARGETS.get(name)
        mark = ""
        if target is not None:
            ok = value <= target[1] if target[0] == "<=" else value >= target[1]
            mark = f"{target[0]} {target[1]}  {'met' if ok else 'MISSED'}"
        lines.append(f"{name:40} {value:>10}  {mark}")
    return "\n".join(lines)


def run(quick: bool, out: Path | None, gpu: bool) -> dict[str, Any]:
    from pipelines.tiny import make_tiny

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    # --quick is the CI smoke run (tests/e2e/test_bench.py): every figure, from the fewest repeats that give one.
    repeats = 2 if quick else 9
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny"
        make_tiny(tiny)
        results: dict[str, Any] = {"machine": _machine(), "repeats": repeats, **cpu_suite(tiny, Path(tmp), repeats)}
    if gpu and torch.cuda.is_available():
        from server.tools.bench_gpu import gpu_suite

        results["gpu"] = gpu_suite(quick)
    print(render(results))
    if out is not None:
        out.write_text(json.dumps(results, indent=2))
    return results


def _machine() -> str:
    cpu = "cpu"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}"
