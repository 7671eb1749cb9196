"""The three hosted response shapes, for the OpenAPI document (docs/API.md). Routes build plain dicts;
these models describe them, and the fuzz test checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["error"]
    message: str = Field(description="What went wrong, naming the field and the rule.")
    messege: str = Field(description="The same text: the hosted API's historical spelling, kept for old clients.")
    id: int | None = Field(default=None, description="The job id, when a job was created.")
    retry_after: int | None = Field(default=None, description="Seconds to wait (HTTP 429 only).")


class SuccessResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["success"]
    generationTime: float = Field(description="Seconds from the job's start to its stored files.")
    id: int
    output: list[str] = Field(description="Image URLs (.png, or .base64 text files / data URIs in base64 mode).")
    proxy_links: list[str]
    nsfw_content_detected: bool
    webhook_status: str = Field(description='"" without a webhook, else pending | delivered | failed.')
    meta: dict[str, Any] = Field(description="Every parameter as really used (seed, W, H, prompt, scheduler_used...).")
    tip: str


class ProcessingResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["processing"]
    id: int
    eta: float = Field(description="Estimated seconds until the job is done.")
    message: str
    messege: str
    fetch_result: str = Field(description="POST {key} here to get the result.")
    future_links: list[str] = Field(description="Where the images will be once done.")
    output: list[str]
    tip: str


AnyAnswer = SuccessResponse | ProcessingResponse | ErrorResponse
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Request body too large"},
    429: {"model": ErrorResponse, "description": "Queue full, or too many failed keys"},
    500: {"model": ErrorResponse, "description": "Server fault (no traceback)"},
}
JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": AnyAnswer, "description": "success, processing, or an error envelope"},
    **ERRORS,
}
