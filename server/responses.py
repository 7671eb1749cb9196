"""Response bodies in the hosted shapes (API.md §3): success and processing, built from a job row."""

from __future__ import annotations

from typing import Any

from server.coerce import yes_no
from server.jobs import JobRow
from server.schemas import Img2ImgRequest
from server.storage import OutputStore, base64_name, png_name

TIP = "sdgate: self-hosted img2img. Docs at /docs on this server."
TIP_PROCESSING = "Your image is processing in background; POST your key to the fetch_result URL to get it."
PROCESSING_MESSAGE = "Try to fetch request after seconds estimated"


def build_meta(
    request: Img2ImgRequest,
    *,
    model_id: str,
    prompt: str,
    negative_prompt: str,
    seed: int,
    width: int,
    height: int,
    file_stem: str,
    is_sdxl: bool,
    ignored: list[str],
) -> dict[str, Any]:
    """Every key of the hosted meta example, with the values that were really used."""
    init = request.init_image if request.init_image.startswith(("http://", "https://")) else "base64"
    return {
        "prompt": prompt,
        "model_id": model_id,
        "scheduler": request.scheduler,
        "safety_checker": yes_no(request.safety_checker),
        "negative_prompt": negative_prompt,
        "W": width,
        "H": height,
        "guidance_scale": request.guidance_scale,
        "init_image": init,
        "steps": request.num_inference_steps,
        "n_samples": request.samples,
        "strength": request.strength,
        "multi_lingual": "no",
        "tomesd": yes_no(request.tomesd),
        "use_karras_sigmas": yes_no(request.use_karras_sigmas),
        "algorithm_type": request.algorithm_type or "no",
        "safety_checker_type": request.safety_checker_type,
        "instant_response": "no",
        "full_url": "no",
        "upscale": "no",
        "vae": request.vae,
        "ip_adapter_id": request.ip_adapter_id,
        "enhance_prompt": yes_no(request.enhance_prompt),
        "enhance_style": request.enhance_style,
        "ip_adapter_scale": request.ip_adapter_scale,
        "ip_adapter_image": request.ip_adapter_image,
        "lora": request.lora_model,
        "lora_strength": _lora_strength_echo(request.lora_strength),
        "embeddings": request.embeddings_model,
        "seed": seed,
        "outdir": "out",
        "file_prefix": f"{file_stem}.png",
        "clip_skip": request.clip_skip,
        "watermark": "no",
        "temp": yes_no(request.temp),
        "base64": yes_no(request.base64),
        "webhook": request.webhook,
        "track_id": request.track_id,
        "is_sdxl": is_sdxl,
        "ignored": ignored,
    }


def _lora_strength_echo(values: list[float] | None) -> float | str:
    if not values:
        return 1
    if len(values) == 1:
        return values[0]
    return ",".join(f"{v:g}" for v in values)


def planned_links(row: JobRow, store: OutputStore) -> list[str]:
    """Final URLs of a job's files, known before they exist (future_links)."""
    stem, samples = row.params["file_stem"], row.params["meta"]["n_samples"]
    area = "temp" if row.params["temp"] else "generations"
    namer = base64_name if row.params["base64"] else png_name
    return [store.url(area, namer(stem, i)) for i in range(samples)]


def success_body(row: JobRow, store: OutputStore, inline_base64: bool, webhook_status: str = "") -> dict[str, Any]:
    assert row.result is not None
    links = planned_links(row, store)
    output: list[str] = links
    if row.params["base64"] and inline_base64:
        output = []
        for item in row.result["outputs"]:
            output.append("data:image/png;base64," + store.read_text(item["area"], item["base64"]))
    meta = {
        **row.params["meta"],
        "id": str(row.id),
        "scheduler_used": row.result["scheduler_used"],
        "karras_applied": row.result["karras_applied"],
        "ignored": row.params["meta"]["ignored"] + row.result["ignored"],
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
    links = planned_links(row, store)
    return {
        "status": "processing",
        "tip": TIP,
        "tip_1": TIP_PROCESSING,
        "eta": eta,
        "message": PROCESSING_MESSAGE,
        "messege": PROCESSING_MESSAGE,
        "fetch_result": f"{base_url}/api/v6/images/fetch/{row.id}",
        "id": row.id,
        "output": [],
        "meta": {**row.params["meta"], "id": str(row.id), "output": links},
        "future_links": links,
    }


def webhook_body(row: JobRow, store: OutputStore, inline_base64: bool) -> dict[str, Any]:
    """What a job's webhook receives: the success object plus track_id, or the failure object (API.md §5)."""
    if row.status == "success":
        return success_body(row, store, inline_base64) | {"track_id": row.params["meta"]["track_id"]}
    message = row.error or "Generation failed"
    return {"status": "failed", "id": row.id, "message": message, "messege": message,
            "track_id": row.params["meta"]["track_id"]}
