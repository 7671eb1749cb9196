# sdgate on an NVIDIA GPU. Build: docker build -t sdgate .
# Run:   docker run --gpus all -p 7860:7860 -e SDGATE_API_KEYS=change-me \
#          -v sdgate-hf:/cache/huggingface -v sdgate-data:/data sdgate
# The CUDA runtime must match the torch wheel index below (cu128 <-> CUDA 12.8).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_VERSION=2.13.0

# Set before Python starts: the allocator reads it once, and requests must never download weights.
ENV PYTHONUNBUFFERED=1 \
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \
    HF_HOME=/cache/huggingface \
    HF_HUB_OFFLINE=1 \
    SDGATE_DATA_DIR=/data \
    SDGATE_CONFIG=/app/models.yaml \
    PATH=/app/.venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 sdgate \
    && mkdir -p /app /data /cache/huggingface \
    && chown -R sdgate:sdgate /app /data /cache
USER sdgate
WORKDIR /app

# Dependencies first (cached layer), from pyproject only: there is no second dependency list.
COPY --chown=sdgate:sdgate pyproject.toml README.md ./
COPY --chown=sdgate:sdgate server ./server
COPY --chown=sdgate:sdgate pipelines ./pipelines
RUN python3 -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION" \
    && .venv/bin/pip install --no-cache-dir ".[safety]"

COPY --chown=sdgate:sdgate models.yaml ./
# Tiny random-weight models back the smoke-test ids in models.yaml (seconds to build, ~30 MB).
RUN sdgate make-tiny --out tiny

VOLUME ["/cache/huggingface", "/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD curl -fsS http://127.0.0.1:7860/health || exit 1
# A public bind: sdgate refuses to start without SDGATE_API_KEYS here.
ENTRYPOINT ["sdgate", "serve", "--host", "0.0.0.0", "--port", "7860"]
