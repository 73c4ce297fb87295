"""Checks the settings schema shares: a list item refused in its place, a value from a known set, a number past its
range taking the nearest allowed, and whether the settings file is being read."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    BeforeValidator,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import PydanticCustomError

from studio.core.units import is_finite_number

DEFAULT_FOLDERS = "default_folders"
READING_FILE = "reading_file"
NEAREST_IN_RANGE = "nearest_in_range"
DEVICE_VALUES = "auto, cpu, cuda, cuda:N (the GPU numbered N) or mps"


class Refused:
    """A list item the settings file holds but Studio cannot keep (a LoRA past the limit, a guide it cannot use),
    left in its place so that validating it fails there: load_settings then drops it and names it."""

    def __init__(self, why: str) -> None:
        self.why = why


def not_refused(value: object) -> object:
    if isinstance(value, Refused):
        raise ValueError(value.why)  # pydantic reports it at the item's place
    return value


T = TypeVar("T")
Checked = Annotated[T, BeforeValidator(not_refused)]  # a list item that may be Refused


def one_of(value: str, known: tuple[str, ...], what: str) -> str:
    if value not in known:
        raise ValueError(f"not a {what} Studio has")
    return value


def parse_device(text: str) -> tuple[str, int] | None:
    """``(kind, GPU index)`` for a device as people write it (``CUDA``, ``cuda:1``, `` mps ``), None for one
    that is no device. Here, without torch: the settings and the command line's options read it too."""
    value = text.strip().lower()
    if value in ("auto", "cpu", "cuda", "mps"):
        return value, 0
    if found := re.fullmatch(r"cuda:(\d+)", value):
        return "cuda", int(found[1])
    return None


def known_device(value: str) -> str:
    """A settings file's device, as written in any case (``cuda:1``: the GPU numbered 1), else refused."""
    if parse_device(value) is None:
        raise ValueError("not a device Studio has")
    return value.strip().lower()


def nearest_in_range(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:  # noqa: ANN401
    """For a number a person set by hand, where one a little past the range means its end (a LoRA weight of 4.5 is
    4): past the range, an error NEAREST_IN_RANGE with the nearest number in it, which load_settings uses and names.
    Anything else that is wrong (not a number, NaN, infinite) raises as it is, and takes its default."""
    try:
        return handler(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        limits = error.get("ctx") or {}
        if not is_finite_number(value) or error["type"] not in ("less_than_equal", "greater_than_equal"):
            raise
        more = error["type"] == "less_than_equal"
        raise PydanticCustomError(NEAREST_IN_RANGE, "{value} is {side} than {limit}", {
            "value": value, "side": "more" if more else "less", "limit": limits["le" if more else "ge"]}) from None


def reading_file(info: ValidationInfo) -> bool:
    """Whether the settings file is being read (load_settings names what it drops), not settings made in code (the
    window's own values, which are trimmed quietly to what a job can take)."""
    return bool((info.context or {}).get(READING_FILE))

