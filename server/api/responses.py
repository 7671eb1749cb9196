"""Response bodies in the hosted shapes: success, processing and webhook, built from what the job recorded."""

from __future__ import annotations

from typing import Any

from server.io.storage import OutputStore, base64_name, png_name
from server.jobs.record import JobRecord, read_record
from server.jobs.store import JobRow

TIP = "sdgate: self-hosted img2img. Docs at /docs on this server."
TIP_PROCESSING = "Your image is processing in background; POST your key to the fetch_result URL to get it."
PROCESSING_MESSAGE = "Try to fetch request after seconds estimated"


def planned_links(record: JobRecord, store: OutputStore) -> list[str]:
    """Final URLs of a job's files, known before they exist (future_links)."""
    output = record.output
    area = "temp" if output.temp else "generations"
    namer = base64_name if output.base64 else png_name
    return [store.url(area, namer(output.file_stem, i)) for i in range(output.images)]


def success_body(row: JobRow, store: OutputStore, inline_base64: bool, webhook_status: str = "") -> dict[str, Any]:
    assert row.result is not None
    record = record_of(row)
    links = planned_links(record, store)
    output: list[str] = links
    if record.output.base64 and inline_base64:
        output = []
        for item in row.result["outputs"]:
            output.append("data:image/png;base64," + store.read_text(item["area"], item["base64"]))
    meta = {
        **record.meta,
        **row.result.get("meta", {}),
        "id": str(row.id),
        "scheduler_used": row.result["scheduler_used"],
        "karras_applied": row.result["karras_applied"],
        "ignored": record.meta["ignored"] + row.result["ignored"],
    }
    return {
        "status": "success",
        "generationTime": row.result["generation_time"],
        "id": row.id,
        "output": output,
        "proxy_links": links,
        "nsfw_content_detected": row.result["nsfw_content_detected"],
        "webhook_status": webhook_status,
        "meta": meta,
        "tip": TIP,
    }


def processing_body(row: JobRow, store: OutputStore, eta: float, base_url: str) -> dict[str, Any]:
    record = record_of(row)
    links = planned_links(record, store)
    # The hosted realtime processing answer has no tip_1.
    extra = {} if record.route.startswith(NO_TIP_1) else {"tip_1": TIP_PROCESSING}
    return {
        "status": "processing",
        "tip": TIP,
        **extra,
        "eta": eta,
        "message": PROCESSING_MESSAGE,
        "messege": PROCESSING_MESSAGE,
        "fetch_result": f"{base_url}{fetch_path(record.route)}/{row.id}",
        "id": row.id,
        "output": [],
        "meta": {**record.meta, "id": str(row.id), "output": links},
        "future_links": links,
    }


def webhook_body(row: JobRow, store: OutputStore, inline_base64: bool) -> dict[str, Any]:
    """What a job's webhook receives: the success object plus track_id, or the failure object.

    track_id is echoed as sent (a number stays a number); a job whose record could not be read, and so
    failed, still reports the column's copy.
    """
    track_id = row.params.get("meta", {}).get("track_id", row.track_id)
    if row.status == "success":
        return success_body(row, store, inline_base64) | {"track_id": track_id}
    message = row.error or "Generation failed"
    return {"status": "failed", "id": row.id, "message": message, "messege": message, "track_id": track_id}


def record_of(row: JobRow) -> JobRecord:
    return read_record(row.params, row.schema_version)


FETCH_PATHS = (
    ("/api/v7/", "/api/v7/images/fetch"),
    ("/api/v6/realtime/", "/api/v6/realtime/fetch"),
    ("/api/v6/image_editing/", "/api/v6/image_editing/fetch"),
)
NO_TIP_1 = ("/api/v6/realtime/",)


def fetch_path(route: str) -> str:
    """Where a job that came in by `route` is fetched: its API family's fetch path (any fetch path works)."""
    return next((path for prefix, path in FETCH_PATHS if route.startswith(prefix)), "/api/v6/images/fetch")
