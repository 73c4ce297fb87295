"""Values read from an image's metadata, which are untrusted: each is taken only when it is what it should be
(None otherwise), never evaluated, and never long enough to be slow to parse."""

from __future__ import annotations

import json
from typing import Any

from studio.core.units import finite_or


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and len(value) <= 40:
        try:
            return int(value.strip())
        except ValueError:
            number = as_float(value)
            return int(number) if number is not None and number.is_integer() else None
    return None


def as_positive(value: Any) -> int | None:
    number = as_int(value)
    return number if number is not None and number > 0 else None


def as_float(value: Any) -> float | None:
    return None if isinstance(value, str) and len(value) > 40 else finite_or(value, None)
