"""Repairs load_settings makes to the settings file's data, as read, before validating it again: a value removed
(so it takes its default) or set to the nearest number allowed."""

from __future__ import annotations

from typing import Any

MAX_SETTINGS_REPAIRS = 20


def drop_places(data: Any, places: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:  # noqa: ANN401
    """Remove the value at each place so it takes its default (a preset keeps its other values when its sampler
    is unknown); a value with no default (a style's missing name, an item of the wrong kind) takes the list item
    holding it with it. Every place is found before anything is removed, so no removal moves another; returns the
    places removed."""
    found = [(place, target) for place in places if (target := _removable(data, place)) is not None]
    for container, key in sorted({(id(c), k): (c, k) for _, (c, k) in found}.values(),
                                 key=lambda target: -target[1] if isinstance(target[1], int) else 0):
        del container[key]
    return [place for place, _ in found]


def number_text(value: float) -> str:
    """A number as a person wrote it in the file: 300 (not 3e+02), 4.5."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def set_at(data: Any, place: tuple[Any, ...], value: object) -> bool:  # noqa: ANN401
    """Put ``value`` at ``place`` (which holds one); False where there is none."""
    *path, last = place
    for part in path:
        if not isinstance(data, dict | list) or not _holds(data, part):
            return False
        data = data[part]
    if not isinstance(data, dict | list) or not _holds(data, last):
        return False
    data[last] = value
    return True


def _holds(container: dict[Any, Any] | list[Any], key: object) -> bool:
    return key in container if isinstance(container, dict) else isinstance(key, int) and 0 <= key < len(container)


def _removable(data: Any, place: tuple[Any, ...]) -> tuple[Any, Any] | None:  # noqa: ANN401
    """The container and key to remove for ``place`` (see drop_places), or None."""
    node, item = data, None
    for depth, part in enumerate(place):
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            item = node, part
        elif not (isinstance(node, dict) and part in node):
            break  # a value that is missing, and has no default
        if depth == len(place) - 1:
            return node, part
        node = node[part]
    return item

