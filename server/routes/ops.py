"""GET /health: liveness plus what an operator wants at a glance."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.state import StateDep

router = APIRouter()


@router.get("/health", summary="Liveness")
async def health(state: StateDep) -> JSONResponse:
    """200 while the GPU worker thread is alive, 503 otherwise."""
    alive = state.worker.is_alive()
    body = {
        "status": "ok" if alive else "error",
        "worker_alive": alive,
        "queue_depth": state.worker.depth(),
        "loaded_models": state.registry.loaded_ids(),
        "device": state.registry.device,
    }
    return JSONResponse(body, status_code=200 if alive else 503)
