# sdgate on an NVIDIA GPU.
#   docker build -t sdgate .
#   docker compose up -d          (see docker-compose.yml and .env.example)
#
# Host driver: this image is CUDA 12.8 (the 12.8.1 runtime image and torch's cu128 wheels), so the host needs
# an NVIDIA driver >= 570 on Linux (`nvidia-smi` shows it) and the NVIDIA container toolkit.
#
# Another CUDA version: the runtime image and the torch wheel index must name the same one; set all three
# (tests/unit/test_deploy_files.py checks the defaults agree):
#   CUDA_IMAGE       an nvidia/cuda *-cudnn-runtime-* image
#   TORCH_INDEX_URL  the torch wheel index for that CUDA version, https://download.pytorch.org/whl/cuXYZ
#   TORCH_VERSION    a torch release that index carries
# e.g. CUDA 13.0, for a driver >= 580:
#   docker build --build-arg CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 --build-arg TORCH_VERSION=2.13.0 -t sdgate .
# An older driver needs an older CUDA: 12.6 (driver >= 560) is .../whl/cu126, with a TORCH_VERSION that index carries.
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

# Dependencies first, in a layer that sees only pyproject.toml and the install script (and the build args):
# editing server/ or pipelines/ reuses it instead of downloading torch again. It is the same install script
# CI runs (scripts/test calls it), on a stand-in for the code: empty package folders and README, so pip
# installs every dependency (and extra) pyproject lists, and pyproject stays the only dependency list.
COPY --chown=sdgate:sdgate pyproject.toml ./
COPY --chown=sdgate:sdgate scripts/setup-venv ./scripts/setup-venv
RUN mkdir server pipelines && touch README.md \
    && SDGATE_TORCH_INDEX_URL="$TORCH_INDEX_URL" SDGATE_TORCH_VERSION="$TORCH_VERSION" \
       scripts/setup-venv safety,postgres,s3,ray \
    && rm -rf server pipelines README.md ./*.egg-info

# Then the code, and the package itself on top of the installed dependencies.
COPY --chown=sdgate:sdgate README.md ./
COPY --chown=sdgate:sdgate scripts ./scripts
COPY --chown=sdgate:sdgate server ./server
COPY --chown=sdgate:sdgate pipelines ./pipelines
RUN .venv/bin/python -m pip install --disable-pip-version-check -q --no-cache-dir --no-deps -e . \
    && .venv/bin/python -m pip check

COPY --chown=sdgate:sdgate models.yaml ./
# Tiny random-weight models back the smoke-test ids in models.yaml (seconds to build, about 30 MB).
RUN sdgate make-tiny --out tiny

VOLUME ["/cache/huggingface", "/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7860/health || exit 1
# A public bind: sdgate refuses to start unless SDGATE_API_KEYS is set.
ENTRYPOINT ["sdgate", "serve", "--host", "0.0.0.0", "--port", "7860"]
