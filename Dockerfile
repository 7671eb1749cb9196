# sdgate on an NVIDIA GPU.
#   docker build -t sdgate .
#   docker compose up -d          (see docker-compose.yml and .env.example)
# The CUDA runtime must match the torch wheel index (cu128 <-> CUDA 12.8); override both together:
#   docker build --build-arg CUDA_IMAGE=... --build-arg TORCH_INDEX_URL=... --build-arg TORCH_VERSION=... .
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
    SDGATE_DEVICE=cuda \
    PATH=/app/.venv/bin:$PATH

# wget: KubeRay's exec probes (releases before the 2026 switch to HTTP probes) call it in Ray pods.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv curl wget ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 sdgate \
    && mkdir -p /app /data /cache/huggingface \
    && chown -R sdgate:sdgate /app /data /cache
USER sdgate
WORKDIR /app

# The same install script CI runs (scripts/test calls it): pyproject is the only dependency list.
COPY --chown=sdgate:sdgate pyproject.toml README.md ./
COPY --chown=sdgate:sdgate scripts ./scripts
COPY --chown=sdgate:sdgate server ./server
COPY --chown=sdgate:sdgate pipelines ./pipelines
RUN SDGATE_TORCH_INDEX_URL="$TORCH_INDEX_URL" SDGATE_TORCH_VERSION="$TORCH_VERSION" scripts/setup-venv safety,postgres,s3,ray

COPY --chown=sdgate:sdgate models.yaml ./
# Tiny random-weight models back the smoke-test ids in models.yaml (seconds to build, about 30 MB).
RUN sdgate make-tiny --out tiny

VOLUME ["/cache/huggingface", "/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7860/health || exit 1
# A public bind: sdgate refuses to start unless SDGATE_API_KEYS is set.
ENTRYPOINT ["sdgate", "serve", "--host", "0.0.0.0", "--port", "7860"]
