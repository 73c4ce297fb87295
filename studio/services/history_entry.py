"""A history entry, and its row in the history database's ``entries`` table: what is written for each field (the
post-processing chain and the parameters as JSON), and how a row that may come from an older Studio or a hand edit
is read back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

OUTCOMES = ("ok", "failed", "cancelled")


@dataclass(frozen=True)
class HistoryEntry:
    prompt: str
    negative_prompt: str = ""
    model_name: str = ""
    model_hash: str = ""
    model_path: str = ""
    seed: int = -1
    steps: int = 0
    cfg_scale: float = 0.0
    sampler: str = ""
    width: int = 0
    height: int = 0
    strength: float | None = None
    generator: str = "diffusers"  # generator (plugin contribution) id
    generator_version: str = ""
    postprocess: list[dict[str, Any]] = field(default_factory=list)  # the post-processing chain, in order
    params: dict[str, Any] = field(default_factory=dict)  # everything else needed to run it again
    outcome: str = "ok"  # ok | failed | cancelled
    message: str = ""  # the failure sentence, for failed jobs
    elapsed: float | None = None  # seconds this image (or the failed job) took
    image_path: str | None = None
    source_image_path: str | None = None  # img2img / inpaint: the picture it started from
    source_mask_path: str | None = None  # inpaint: the mask
    created: float = 0.0  # set by the store when 0
    starred: bool = False
    id: int = 0  # set by the store


COLUMNS = tuple(f.name for f in fields(HistoryEntry))
INSERT_COLUMNS = tuple(c for c in COLUMNS if c != "id")
INSERT_SQL = (f"INSERT INTO entries ({', '.join(INSERT_COLUMNS)}) "
              f"VALUES ({', '.join('?' for _ in INSERT_COLUMNS)})")
SELECT_SQL = f"SELECT {', '.join(COLUMNS)} FROM entries"


def row_values(entry: HistoryEntry, now: float) -> tuple[Any, ...]:
    """The values of INSERT_SQL for ``entry`` (``now``: its time, where it has none); its outcome is one of
    OUTCOMES."""
    values = []
    for name in INSERT_COLUMNS:
        value = getattr(entry, name)
        if name in ("postprocess", "params"):
            value = json.dumps(value, ensure_ascii=False, default=str)
        elif name == "created":
            value = value or now
        elif name == "starred":
            value = int(bool(value))
        values.append(value)
    return tuple(values)


def entry_from_row(row: Sequence[Any]) -> HistoryEntry:
    """The entry a row of SELECT_SQL holds; JSON that cannot be read is taken as none."""
    values = dict(zip(COLUMNS, row))
    values["postprocess"] = json_or(values["postprocess"], [], list)
    values["params"] = json_or(values["params"], {}, dict)
    values["starred"] = bool(values["starred"])
    values["generator_version"] = values["generator_version"] or ""
    return HistoryEntry(**values)


def json_or(text: str | None, default: Any, kind: type) -> Any:  # noqa: ANN401
    """``text`` read as JSON where it is a ``kind``, else ``default``."""
    try:
        value = json.loads(text) if text else default
    except ValueError:
        return default
    return value if isinstance(value, kind) else default
