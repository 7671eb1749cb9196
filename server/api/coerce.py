"""Lenient parsing of the value forms real ModelsLab clients send (docs/API.md): "31" and 31, "yes" and true.

Hand-written because pydantic's lax mode rejects "yes"/"no" and accepts things the hosted API does not
(e.g. "1e3" for an integer); every error here is worded the way the hosted API words it.
"""

from __future__ import annotations

import math
from typing import Any

_TRUE = {"yes", "true", "1", "y", "on"}
_FALSE = {"no", "false", "0", "n", "off", ""}


def to_bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f'{field} must be "yes" or "no"')


def to_number(field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a number")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # a JSON integer hundreds of digits long
            raise ValueError(f"{field} is out of range") from None
    elif isinstance(value, str):
        if not value.isascii():
            # float() also reads other scripts' digits ("٣"); the hosted API's clients send ASCII numbers.
            raise ValueError(f"{field} must be a number")
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{field} must be a number") from None
    else:
        raise ValueError(f"{field} must be a number")
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a number")
    return number


def to_int(field: str, value: Any) -> int:
    number = to_number(field, value)
    if not number.is_integer():
        raise ValueError(f"{field} must be an integer")
    return int(number)


def in_range(field: str, number: float, low: float, high: float) -> float:
    if not low <= number <= high:
        lo, hi = (int(x) if float(x).is_integer() else x for x in (low, high))
        raise ValueError(f"{field} must be between {lo} and {hi}")
    return number


def to_optional_str(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"{field} must be a string")


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
