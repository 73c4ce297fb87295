"""The history database file while Studio runs: still the one opened, or removed, replaced or overwritten?

A file deleted or replaced while Studio runs would otherwise take the new entries with it (an open connection
writes on into it), so the store checks the file before each use and starts again with what is at the path now.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable

from studio.services.history_damage import (
    COMPANIONS,
    DamagedDatabase,
    check_database,
    companion,
    companions_found,
    move_aside,
)
from studio.services.history_errors import HistoryError

log = logging.getLogger(__name__)


def file_identity(path: Path) -> tuple[int, int] | None:
    """The file at path as (device, inode); None when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class DatabaseFileWatch:
    """The database file a HistoryStore opened, and what became of it.

    ``open_checked`` checks, opens and migrates the database at the path (DamagedDatabase when the file is
    damaged); ``drop_connection`` closes the calling thread's connection. ``generation`` goes up each time a new
    database was started: connections made before it are on the old file and are dropped.
    """

    def __init__(self, path: Path, busy_timeout: float, open_checked: Callable[[], None],
                 drop_connection: Callable[[], None]) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._open_checked = open_checked
        self._drop_connection = drop_connection
        self._identity: tuple[int, int] | None = None  # the file opened: (device, inode)
        self.watching = False
        self.generation = 0
        self._reopen_lock = threading.RLock()
        self._news: list[str] = []  # sentences about what happened to the file since it was opened (take_news)
        self._news_lock = threading.Lock()

    def start(self) -> None:
        """Watch the file now at the path (the one just opened)."""
        self._identity = file_identity(self.path)
        self.watching = True

    def take_news(self) -> list[str]:
        """Sentences about what happened to the database file since the last call, each given once."""
        with self._news_lock:
            news, self._news = self._news, []
        return news

    def _tell(self, text: str) -> None:
        log.warning("%s", text)
        with self._news_lock:
            self._news.append(text)

    def follow(self) -> None:
        """When the database file is no longer the one this store opened (deleted, or another file put in its
        place), start using what is at the path now: a new database where there is none."""
        if file_identity(self.path) == self._identity:
            return
        with self._reopen_lock:
            if file_identity(self.path) == self._identity:
                return  # another thread followed it meanwhile
            removed = not os.path.lexists(self.path)
            if removed:
                for suffix in COMPANIONS:  # the removed database's: replayed into a new one, they would damage it
                    companion(self.path, suffix).unlink(missing_ok=True)
            aside = self._start_again()
            if aside is not None:
                self._tell(f"The history database {self.path} was replaced by a damaged file while Studio ran, so "
                           f"Studio set that aside as {aside.name} and started a new, empty history.")
            elif removed:
                self._tell(f"The history database {self.path} was removed while Studio ran; a new one was started "
                           "there, and the entries made before are gone from the history (their pictures are kept).")
            else:
                self._tell(f"The history database {self.path} was replaced by another file while Studio ran; Studio "
                           "now keeps the history in that file.")

    def set_aside_damaged(self) -> bool:
        """After SQLite said the database is damaged: when a check confirms it (garbage written over the file
        while Studio ran), set it aside and start a new one now, rather than lose the entries until the next
        start. True when that was done."""
        with self._reopen_lock:
            try:
                check_database(self.path, self.busy_timeout)
            except DamagedDatabase:
                pass
            except HistoryError:
                return False
            else:
                return False  # sound now (another thread set it aside meanwhile), or the damage is elsewhere
            self.generation += 1
            self._drop_connection()
            aside = move_aside(self.path, companions_found(self.path))
            self.open_new()
            self._tell(f"The history database {self.path} was damaged while Studio ran, so Studio set it aside as "
                       f"{aside.name} (in {aside.parent}) and started a new, empty history.")
        return True

    def _start_again(self) -> Path | None:
        """Open (or create) the database now at the path, in place of the one opened before; a damaged file
        there is set aside first (returned: where it went)."""
        self.generation += 1
        self._drop_connection()
        found = companions_found(self.path)
        try:
            self._open_checked()
        except DamagedDatabase:
            self._drop_connection()
            aside = move_aside(self.path, found)
            self.open_new()
            return aside
        self._identity = file_identity(self.path)
        return None

    def open_new(self) -> None:
        """Open (or create) the database at the path, a damaged one having just been set aside; HistoryError
        when that fails too."""
        try:
            self._open_checked()
        except DamagedDatabase as again:
            raise HistoryError(f"A new history database could not be created in {self.path.parent}: "
                               f"{again}.") from None
        self._identity = file_identity(self.path)
