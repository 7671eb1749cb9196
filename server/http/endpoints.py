"""The endpoint table: each hosted diffusion endpoint is one row, its paths (the documented one first, then
legacy and v7 aliases) and the request model that turns a body into a job. Routes are built from it."""

from __future__ import annotations

from dataclasses import dataclass

from server.api.img2img import Img2ImgRequest
from server.api.inpaint import InpaintRequest
from server.api.realtime import (
    ImageEditingInpaintRequest,
    RealtimeImg2ImgRequest,
    RealtimeInpaintRequest,
    RealtimeText2ImgRequest,
)
from server.api.submission import TaskRequest
from server.api.text2img import Text2ImgRequest


@dataclass(frozen=True)
class Endpoint:
    paths: tuple[str, ...]
    request: type[TaskRequest]
    summary: str
    description: str


ENDPOINTS = (
    Endpoint(
        ("/api/v6/images/img2img", "/api/v3/img2img", "/api/v3/dreambooth/img2img", "/api/v4/dreambooth/img2img",
         "/api/v7/images/image-to-image"),
        Img2ImgRequest,
        "Image to image (ModelsLab v6 compatible)",
        "Generate images from init_image and prompt; answers success, or processing when it takes too long.",
    ),
    Endpoint(
        ("/api/v6/images/text2img", "/api/v3/text2img", "/api/v3/dreambooth", "/api/v4/dreambooth",
         "/api/v7/images/text-to-image"),
        Text2ImgRequest,
        "Text to image (ModelsLab v6 compatible)",
        "Generate images from a prompt; answers success, or processing when it takes too long.",
    ),
    Endpoint(
        ("/api/v6/images/inpaint", "/api/v3/inpaint", "/api/v3/dreambooth/inpaint", "/api/v4/dreambooth/inpaint",
         "/api/v7/images/inpaint"),
        InpaintRequest,
        "Inpaint (ModelsLab v6 compatible)",
        "Repaint the white area of mask_image in init_image; the black area is kept exactly.",
    ),
    Endpoint(("/api/v6/realtime/text2img",), RealtimeText2ImgRequest, "Realtime text to image",
             "Text to image on the fast realtime model; runs ahead of queued ordinary jobs."),
    Endpoint(("/api/v6/realtime/img2img",), RealtimeImg2ImgRequest, "Realtime image to image",
             "Image to image on the fast realtime model; runs ahead of queued ordinary jobs."),
    Endpoint(("/api/v6/realtime/inpaint",), RealtimeInpaintRequest, "Realtime inpaint",
             "Inpaint on the fast realtime model; runs ahead of queued ordinary jobs."),
    Endpoint(("/api/v6/image_editing/inpaint",), ImageEditingInpaintRequest, "Image editing: inpaint",
             "Realtime inpaint with this endpoint's defaults (30 steps, guidance 5)."),
)
