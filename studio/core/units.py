"""Numbers for people (a leaf module: anything may import it without pulling in more)."""

from __future__ import annotations


def format_size(size: int) -> str:
    """Bytes for people: "6.6 GB", "144.0 MB"."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
