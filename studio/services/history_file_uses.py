"""Which files the history's entries use: their pictures, source pictures and masks, and the control pictures
Studio kept for their guides. A file another entry still uses is never removed or written over."""

from __future__ import annotations

import json
import sqlite3

from studio.services.history_entry import json_or
from studio.services.outputs import is_kept_control


def referenced(conn: sqlite3.Connection, paths: list[str]) -> set[str]:
    """Which of these files other entries still use (one pass over the table)."""
    marks = ", ".join("?" for _ in paths)
    used: set[str] = set()
    for row in conn.execute(f"SELECT image_path, source_image_path, source_mask_path FROM entries "
                            f"WHERE image_path IN ({marks}) OR source_image_path IN ({marks}) "
                            f"OR source_mask_path IN ({marks})", paths * 3):
        used.update(p for p in row if p in paths)
    return used


def kept_controls(params: str | None) -> list[str]:
    """The control pictures Studio kept for an entry's guides and for the picture parameters of its generator and
    chain steps (never a person's own file one named instead)."""
    recorded = json_or(params, {}, dict)
    records = recorded.get("controls")
    images = [r.get("image") for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    steps = recorded.get("post") if isinstance(recorded.get("post"), list) else []
    for values in [recorded.get("generator_params"), *(s.get("params") for s in steps if isinstance(s, dict))]:
        images += values.values() if isinstance(values, dict) else []
    return list(dict.fromkeys(i for i in images if isinstance(i, str) and i and is_kept_control(i)))


def controls_referenced(conn: sqlite3.Connection, paths: list[str]) -> set[str]:
    """Which of these control pictures other entries' guides still use. Guides live in the params JSON: rows that
    hold a path's JSON text at all are found by SQLite, then read here (a note may hold the path as well, which is
    no use of it; a picture parameter kept the same way is)."""
    if not paths:
        return set()
    needles = [json.dumps(path, ensure_ascii=False) for path in paths]  # as row_values wrote them
    used: set[str] = set()
    for (params,) in conn.execute(f"SELECT params FROM entries WHERE {' OR '.join('instr(params, ?)' for _ in paths)}",
                                  needles):
        used.update(path for path in kept_controls(params) if path in paths)
    return used
