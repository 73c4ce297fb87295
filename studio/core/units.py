"""Numbers for people (a leaf module: anything may import it without pulling in more)."""

from __future__ import annotations

import math
from typing import TypeVar

Default = TypeVar("Default")


def format_size(size: int) -> str:
    """Bytes for people: "6.6 GB", "144.0 MB"."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def is_finite_number(value: object) -> bool:
    """An int or float (never a bool: JSON's true is no number), neither NaN nor infinite, and within a float's
    range (JSON may write an integer of 400 digits, which no setting or recipe value can take)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past float's range
        return False


def finite_or(value: object, default: Default) -> float | Default:
    """value (a number, or a number's text) as a finite float; default where it is none (None, a bool, other text,
    NaN, infinite)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return default
    return float(value) if is_finite_number(value) else default


def short_number(value: object) -> str:
    """A number as recipes write it ("7.5", "1", "1e-05"); anything else as its text."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)
