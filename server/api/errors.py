"""The hosted error envelope: status, message and the hosted `messege` typo; ApiError carries one to the client."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An expected failure; `message` is shown to the client. HTTP 200 unless the contract says otherwise."""

    def __init__(self, message: str, http_status: int = 200, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.extra = extra


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "messege": message, **extra}


def describe_validation_error(errors: list[dict[str, Any]]) -> str:
    """The first problem in words, naming the field; our validators already phrase theirs in the hosted wording."""
    if not errors:
        return "Invalid request"
    first = errors[0]
    if first["type"] in ("json_invalid", "model_attributes_type", "dict_type", "model_type"):
        return "Invalid JSON body"
    if first["type"] == "missing" and tuple(first.get("loc", ())) == ("body",):
        return "Invalid JSON body"  # an empty body or JSON null
    field = next((str(p) for p in reversed(first.get("loc", ())) if p != "body"), "request")
    if first["type"] == "missing":
        return f"{field} is required"
    if first["type"] == "value_error" and "error" in first.get("ctx", {}):
        return str(first["ctx"]["error"])
    return f"{field}: {first['msg']}"
