"""Operator routes: GET /health, GET /metrics, POST /api/v3/system_load."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from server.http.deps import Authorized, StateDep

router = APIRouter()


@router.get("/ready", summary="Readiness")
async def ready(state: StateDep) -> JSONResponse:
    """200 once the SDGATE_PRELOAD models are loaded and warm and the GPU worker is alive; 503 before."""
    ok = state.ready and state.worker.is_alive()
    reason = state.not_ready_reason or ("" if state.worker.is_alive() else "GPU worker stopped")
    return JSONResponse({"status": "ready" if ok else "not_ready", "reason": reason,
                         "loaded_models": state.worker.loaded_ids()}, status_code=200 if ok else 503)


@router.get("/health", summary="Liveness")
async def health(state: StateDep) -> JSONResponse:
    """Liveness only: 200 while the process and its GPU worker thread are alive."""
    alive = state.worker.is_alive()
    body = {
        "status": "ok" if alive else "error",
        "worker_alive": alive,
        "queue_depth": state.worker.depth(),
        "loaded_models": state.worker.loaded_ids(),
        "device": state.worker.device,
        "backend": state.settings.backend,
        "replicas": state.worker.replicas(),
    }
    return JSONResponse(body, status_code=200 if alive else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(state: StateDep) -> Response:
    """Jobs by status, queue depth, queue wait / generation / model-load histograms, webhook attempts."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)



@router.post("/api/v3/system_load", summary="Queue load (hosted v3 shape)")
async def system_load(state: StateDep, _: Authorized) -> dict:
    """Unfinished jobs and the estimated seconds to drain them."""
    depth = state.worker.depth()
    return {"queue_num": depth, "queue_time": round(state.worker.average_seconds() * depth, 2), "status": "ok"}
