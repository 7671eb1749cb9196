#!/usr/bin/env bash
# The whole GPU benchmark in one call on a lent GPU machine (torch with CUDA and transformers are there;
# diffusers and the rest are not, and it has no network). Prepare the wheels here first:
#   scripts/gpu_bench.sh --download      (fills .whl/ for CPython 3.12 manylinux x86_64)
# then on the GPU machine, from the repo root, with .whl carried:
#   scripts/gpu_bench.sh                 (installs the wheels, builds full-size random-weight
#                                         SD1.5 / SDXL, runs `sdgate bench`, writes $OUT/bench.json)
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(diffusers==0.42.1 peft==0.21.2 accelerate==1.15.0 tomesd==0.1.3 safetensors huggingface_hub fastapi
        starlette uvicorn pydantic-settings python-dotenv httpx httpcore h11 anyio sniffio pyyaml sqlalchemy
        greenlet prometheus-client python-json-logger scipy torchsde trampoline tqdm pillow typing-inspection
        annotated-types annotated-doc hf-xet)
if [ "${1:-}" = "--download" ]; then
    mkdir -p .whl
    for wheel in "${WHEELS[@]}"; do
        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform any -d .whl "$wheel"
    done
    exit 0
fi
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -m server.cli bench --out "${OUT:-.}/bench.json"
