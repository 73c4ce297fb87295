"""The gallery's writes to the history: star, delete (the entry, its files and its cached thumbnail), and the
entries kept while another program held the history's lock, tried again until they are written. Each runs off
the UI thread: another Studio may hold the write lock for seconds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal

from studio.core.errors import StudioError
from studio.services.history_errors import HistoryLocked
from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.ui import delete_question
from studio.ui.gallery_model import GalleryModel
from studio.ui.tasks import Tasks

log = logging.getLogger(__name__)
PENDING_RETRY_MS = 2000  # how often entries kept while the history was locked are tried again
READ_ONLY = "the history is read-only: Studio may not write to it or to its folder"  # why Star and Delete are off


class GalleryWrites:
    """The writing part of GalleryPanel, which sets these up and shows the rows."""

    store: HistoryStore
    model: GalleryModel
    _tasks: Tasks
    failed: Signal
    said: Signal
    selected_entry: Callable[[], HistoryEntry | None]
    select_row: Callable[[int], None]
    current_query: Callable[[], HistoryQuery]
    reload: Callable[[], Awaitable[None]]
    _refresh_models: Callable[[], Awaitable[bool]]  # whether the model filter's model is gone
    _show_count: Callable[[], None]
    _update_buttons: Callable[[], None]

    def _start_pending_retries(self) -> None:
        """Entries kept while another program held the history's lock are tried again until they are written."""
        self._pending_timer = QTimer(self)
        self._pending_timer.setInterval(PENDING_RETRY_MS)
        self._pending_timer.timeout.connect(self.retry_pending)
        self._retrying: asyncio.Task | None = None
        if not self.store.read_only:
            self._pending_timer.start()

    def retry_pending(self) -> asyncio.Task | None:
        """Write the entries kept while the history was locked (off the UI thread: it waits for the lock)."""
        if not self.store.pending_count() or (self._retrying is not None and not self._retrying.done()):
            return None
        self._retrying = self._run(self._add_pending())
        return self._retrying

    async def _add_pending(self) -> None:
        try:
            added = await asyncio.to_thread(self.store.add_pending)
        except HistoryLocked:
            return  # still locked: kept, tried again at the next tick
        except StudioError as exc:
            log.warning("Entries kept while the history was locked could not be added: %s", exc)
            return
        if added:
            self.said.emit(added)
            await self.reload()

    def _run(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task:
        """Store work off the UI thread (another Studio may hold the write lock for seconds)."""
        return self._tasks.run(coro)

    def toggle_star(self) -> asyncio.Task | None:
        entry = self.selected_entry()
        if entry is None or self._refused_read_only("starred"):
            return None
        return self._run(self._set_starred(entry.id, not entry.starred))

    def _refused_read_only(self, done: str) -> bool:
        """Whether the history may not be written: said, for the Delete key (the buttons and menu are off)."""
        if self.store.read_only:
            self.failed.emit(f"Pictures cannot be {done} here: {READ_ONLY}.")
        return self.store.read_only

    async def _set_starred(self, entry_id: int, starred: bool) -> None:
        try:
            await asyncio.to_thread(self.store.set_starred, entry_id, starred)
            await self.model.update_entry(entry_id)
        except StudioError as exc:  # nothing changed: the star shows what the history holds
            self.failed.emit(str(exc))

    def delete_selected(self, confirm: bool = True) -> asyncio.Task | None:
        entry = self.selected_entry()
        if entry is None or self._refused_read_only("deleted"):
            return None
        if confirm:
            # A failed or cancelled job's entry has no picture file to delete.
            title, question = ("Delete Picture", "Delete this history entry and its picture file?") \
                if entry.outcome == "ok" else ("Delete Job", f"Delete this {entry.outcome} job from the history?")
            if not delete_question.ask_to_delete(self, title, f"{question} This cannot be undone."):
                return None
        return self._run(self._delete(entry))

    async def _delete(self, entry: HistoryEntry) -> None:
        try:
            await asyncio.to_thread(self._delete_entry_and_files, entry)
        except StudioError as exc:  # nothing was deleted: the row stays
            self.failed.emit(str(exc))
            return
        self.model.thumbnails.invalidate(entry.id)
        row = self.model.row_of(entry.id)
        self.model.remove_entry(entry.id)
        if row is not None and self.model.rowCount():
            # The picture that took its place, else the one before it (the last was deleted), as file managers do.
            self.select_row(min(row, self.model.rowCount() - 1))
        self._show_count()
        self._update_buttons()
        # The model filter lists only models with pictures: the last one of a model takes it off the list.
        if await self._refresh_models():
            await self.model.set_query(self.current_query())

    def _delete_entry_and_files(self, entry: HistoryEntry) -> None:
        """Off the UI thread: the entry, its files, and its picture's cached thumbnail (privacy)."""
        picture = Path(entry.image_path) if entry.image_path else None
        cached = self.model.thumbnails.cached_file(picture) if picture else None  # named by the picture's stat
        self.store.delete(entry.id, remove_files=True)
        if cached is not None and not picture.exists():  # kept while another entry still shows the picture
            try:
                cached.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("Could not remove the cached thumbnail %s of a deleted picture: %s", cached, exc)
