"""Model routes of the hosted API: POST /api/v4/dreambooth/model_list and /api/v6/images/model_reload."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from fastapi import APIRouter

from pipelines.pull import local_status
from pipelines.registry import ModelNotAvailable, ModelNotFound
from server.api.errors import ApiError
from server.api.fields import ReloadRequest, parse_fields
from server.http.deps import Authorized, FieldsDep, StateDep
from server.http.state import AppState

router = APIRouter()



def _model_rows(state: AppState) -> list[dict[str, Any]]:
    rows = []
    for model_id, entry in state.registry.config.models.items():
        present, _ = local_status(model_id, entry, state.settings.data_dir)
        source = entry.path or entry.file
        created = None
        if present and source is not None:
            created = datetime.datetime.fromtimestamp(source.stat().st_mtime, datetime.UTC).isoformat()
        rows.append({
            "model_id": model_id,
            "status": "model_ready" if present else "not_downloaded",
            "created_at": created,
            "instance_prompt": entry.instance_prompt,
            "model_name": entry.name or model_id,
            "description": entry.description or "",
            "screenshots": "",
            "is_sdxl": entry.family == "sdxl",
        })
    return rows


@router.post("/api/v4/dreambooth/model_list", summary="Registered models (hosted bare-array shape)",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/KeyOnlyRequest"}}}}})
async def model_list(state: StateDep, _: Authorized) -> list[dict[str, Any]]:
    """Every model in models.yaml; status model_ready when its files are on this machine."""
    return await asyncio.to_thread(_model_rows, state)


@router.post("/api/v6/images/model_reload", summary="Load or re-load a model")
async def model_reload(fields: FieldsDep, state: StateDep, _: Authorized) -> dict[str, Any]:
    """Starts a (re)load on the GPU thread; success when done in time, processing while it runs."""
    model_id = parse_fields(ReloadRequest, fields).model_id
    try:
        state.registry.entry(model_id)
    except ModelNotFound as exc:
        raise ApiError(str(exc)) from None
    running = state.reloads.get(model_id)
    if running is None or running.done():
        running = state.worker.reload(model_id)
        state.reloads[model_id] = running
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(running)), timeout=state.settings.sync_timeout or 0.01)
    except TimeoutError:
        return {"status": "processing", "message": f"Model {model_id} is loading", "eta": state.worker.eta()}
    except ModelNotAvailable as exc:
        raise ApiError(str(exc)) from None
    return {"status": "success", "message": f"Model {model_id} loaded"}


router.add_api_route("/api/v3/dreambooth/model_list", model_list, methods=["POST"], include_in_schema=False)
router.add_api_route("/api/v4/dreambooth/model_reload", model_reload, methods=["POST"], include_in_schema=False)
