"""The gallery as a Qt model over the history store: the matching ids are fetched once per query,
entries a page at a time as rows come into view, thumbnails lazily.
"""

from __future__ import annotations

import asyncio
import html
import logging
import textwrap
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QImage

from studio.core.errors import StudioError
from studio.core.events import format_seconds
from studio.core.hires import HiresFix, hires_summary
from studio.core.metadata import plugin_settings_text
from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.ui.thumbnails import ThumbnailLoader

log = logging.getLogger(__name__)
PAGE = 200
PICTURELESS = ("failed", "cancelled")  # outcomes of jobs listed without a picture (the gallery marks them)
ENTRY_ROLE = Qt.ItemDataRole.UserRole
THUMB_ROLE = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


class GalleryModel(QAbstractListModel):
    counted = Signal()  # the rows' failed and cancelled jobs are counted (pictureless)

    def __init__(self, store: HistoryStore, thumbnail_cache: Path) -> None:
        super().__init__()
        self.store = store
        self.query = HistoryQuery()
        self._ids: list[int] = []
        self._rows: dict[int, int] = {}  # id -> row
        self._entries: dict[int, HistoryEntry] = {}  # id -> entry, for fetched pages
        # outcome -> how many of the rows are jobs of it (no picture); None until counted, after the rows
        self.pictureless: dict[str, int] | None = {}
        self._generation = 0  # a newer query makes older results stale
        self._in_flight = 0  # queries still running (a superseded one ends without touching the rows)
        self.error: str | None = None  # why the newest query failed (its rows are then empty, not unfiltered)
        self.thumbnails = ThumbnailLoader(thumbnail_cache, self._thumbnail_loaded)

    # -- queries -----------------------------------------------------------------------------------
    async def set_query(self, query: HistoryQuery) -> None:
        """Run the query off the UI thread; the newest call wins."""
        self._generation += 1
        generation = self._generation
        self._in_flight += 1
        error = None
        try:
            ids = await asyncio.to_thread(self.store.search_ids, query)
        except StudioError as exc:
            ids, error = [], str(exc)
            log.warning("Gallery query failed: %s", exc)
        finally:
            self._in_flight -= 1
        if generation != self._generation:
            return
        self.query = query
        self.error = error
        self.beginResetModel()
        self._ids = ids
        self._rows = {entry_id: row for row, entry_id in enumerate(ids)}
        self._entries.clear()
        self.pictureless = {} if error or not ids else None
        self.endResetModel()
        if self.pictureless is None:
            await self._count_pictureless(query, generation)

    async def _count_pictureless(self, query: HistoryQuery, generation: int) -> None:
        """Count the rows' failed and cancelled jobs after the rows are shown: at 100,000 entries the counts take
        longer than the search (the outcome has no index), and the rows must not wait for them."""
        self._in_flight += 1
        try:
            outcomes = [o for o in PICTURELESS if query.outcome in (None, o)]
            counts = await asyncio.to_thread(lambda: {o: self.store.count(replace(query, outcome=o)) for o in outcomes})
        except StudioError as exc:  # the count then takes every row for a picture, as it always did
            log.warning("Gallery rows could not be counted: %s", exc)
            counts = {}
        finally:
            self._in_flight -= 1
        if generation == self._generation:
            self.pictureless = {outcome: count for outcome, count in counts.items() if count}
            self.counted.emit()

    @property
    def picture_count(self) -> int:
        """The rows that are pictures: all but the failed and cancelled jobs."""
        return max(0, len(self._ids) - sum((self.pictureless or {}).values()))

    @property
    def settled(self) -> bool:
        """No query is running: the rows are the newest query's."""
        return self._in_flight == 0

    async def refresh(self) -> None:
        await self.set_query(self.query)

    def entry_at(self, row: int) -> HistoryEntry | None:
        if not 0 <= row < len(self._ids):
            return None
        entry_id = self._ids[row]
        if entry_id not in self._entries:
            self._fetch_page(row)
        return self._entries.get(entry_id)

    def _fetch_page(self, row: int) -> None:
        start = max(0, row - PAGE // 4)  # rows just above are likely wanted too (scrolling up)
        ids = [i for i in self._ids[start:start + PAGE] if i not in self._entries]
        try:
            entries = self.store.entries(ids)
        except StudioError as exc:  # a paint must never raise: the row just stays blank
            log.warning("Gallery rows could not be read: %s", exc)
            return
        for entry in entries:
            self._entries[entry.id] = entry

    def row_of(self, entry_id: int) -> int | None:
        return self._rows.get(entry_id)

    async def update_entry(self, entry_id: int) -> None:
        """Re-read one entry (after star/unstar), off the UI thread, and repaint its row."""
        fresh = await asyncio.to_thread(self.store.get, entry_id)
        row = self._rows.get(entry_id)
        if row is None or fresh is None:
            return
        self._entries[entry_id] = fresh
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def remove_entry(self, entry_id: int) -> None:
        row = self._rows.get(entry_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._ids[row]
        entry = self._entries.pop(entry_id, None)
        if entry is not None and self.pictureless and self.pictureless.get(entry.outcome):
            self.pictureless[entry.outcome] -= 1
        self._rows = {i: r for r, i in enumerate(self._ids)}
        self.endRemoveRows()

    # -- Qt model ----------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        entry = self.entry_at(index.row()) if index.isValid() else None
        if entry is None:
            return None
        if role == ENTRY_ROLE:
            return entry
        if role == THUMB_ROLE:
            path = Path(entry.image_path) if entry.image_path else None
            return self.thumbnails.get(entry.id, path) if path else None
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.prompt
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(entry)
        return None

    def _thumbnail_loaded(self, entry_id: int) -> None:
        row = self._rows.get(entry_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [THUMB_ROLE])

    def thumbnail(self, index: Index) -> QImage | None:
        return self.data(index, THUMB_ROLE)


UNKNOWN_DATE = "unknown date"


def made_at(entry: HistoryEntry) -> str:
    """When the entry was made, as the gallery's tooltip shows it."""
    try:
        return datetime.fromtimestamp(entry.created).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):  # a time out of range (say, written in ms): the row still shows
        return UNKNOWN_DATE


def entry_name(entry: HistoryEntry, width: int = 40) -> str:
    """The entry named in a sentence as the gallery shows it to the person, by its prompt (shortened) and when it
    was made: the gallery never shows an entry's id, so "history entry 12" names nothing they can find."""
    prompt = " ".join(entry.prompt.split())
    if len(prompt) > width:
        # At a word's end where there is one; a prompt of one long word is cut inside it.
        prompt = textwrap.shorten(prompt, width, placeholder="…") if " " in prompt[:width - 1] \
            else prompt[:width - 1] + "…"
    # A failed or cancelled job is listed without a picture: calling it one would send the person looking for it.
    kind = f"{entry.outcome} job" if entry.outcome in PICTURELESS else "picture"
    when = made_at(entry)
    when = "an unknown date" if when == UNKNOWN_DATE else when
    return f"the {kind} “{prompt}” from {when}" if prompt else f"the {kind} from {when}"


def tooltip(entry: HistoryEntry) -> str:
    """Rich text; every value from metadata is escaped (it is data, never markup)."""
    when = made_at(entry)
    lines = [f"<b>{html.escape(entry.prompt[:400]) or '(no prompt)'}</b>"]
    if entry.negative_prompt:
        lines.append(f"Negative: {html.escape(entry.negative_prompt[:300])}")
    plugin = entry.generator not in ("", "diffusers")  # its job's row holds no steps, sampler nor CFG of its own
    sampling = [f"{entry.steps} steps" if entry.steps or not plugin else "", entry.sampler,
                f"CFG {entry.cfg_scale:g}" if entry.cfg_scale or not plugin else ""]
    lines.append(html.escape(" · ".join(part for part in (f"{entry.width}×{entry.height}", *sampling,
                                                           f"seed {entry.seed}") if part)))
    if (hires := HiresFix.from_record(entry.params.get("hires"))) is not None:
        lines.append(html.escape(f"Hires fix {hires_summary(hires, entry.width, entry.height)}"))
    if plugin and isinstance(settings := entry.params.get("generator_params"), dict) and settings:
        lines.append(html.escape(textwrap.shorten(plugin_settings_text(settings), 300, placeholder=" …")))
    hash_ = f" [{entry.model_hash}]" if entry.model_hash else ""
    lines.append(html.escape(f"{entry.model_name}{hash_} · {when}"
                             + (f" · {format_seconds(entry.elapsed)}" if entry.elapsed else "")))
    if entry.outcome != "ok":
        lines.append(f"<i>{html.escape(entry.outcome.capitalize())}: {html.escape(entry.message)}</i>")
    return "<br>".join(lines)


def count_text(pictures: int, pictureless: dict[str, int]) -> str:
    """The gallery's count: "5 pictures", and the failed and cancelled jobs apart ("5 pictures · 1 failed job"),
    listed with them but without a picture."""
    parts = [f"{pictures:,} picture{'s' * (pictures != 1)}"]
    parts += [f"{count:,} {outcome} job{'s' * (count != 1)}" for outcome, count in pictureless.items() if count]
    return " · ".join(parts)
