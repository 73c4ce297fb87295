"""history_pending: entries that could not be written while another program held the history database's lock are
kept, and written once the lock is gone (or when closing, saying what was lost when it never is)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from history_testing import entry, prompts_on_disk

from studio.services.history_store import HistoryStore


class Locker:
    """Another program's write lock on the database, held until released."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_entries_kept_while_locked_are_added_once_the_lock_is_gone(tmp_path):
    from studio.services.history_errors import HistoryLocked

    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    store.add(entry("before"))
    locker = Locker(store.path)
    with pytest.raises(HistoryLocked):
        store.add(entry("while locked"))
    store.keep_for_later(entry("while locked"))
    with pytest.raises(HistoryLocked):
        store.add_pending()
    assert store.pending_count() == 1  # nothing written, nothing dropped
    locker.release()
    assert store.add_pending() == ("The history database is free again: 1 entry kept while it was locked was "
                                   "added to the history.")
    assert store.add_pending() is None and store.pending_count() == 0
    assert [e.prompt for e in store.search()] == ["while locked", "before"]
    store.close()


def test_closing_waits_for_the_lock_to_write_kept_entries_or_says_what_was_lost(tmp_path):
    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    store.add(entry("before"))
    locker = Locker(store.path)
    store.keep_for_later(entry("kept"))
    said: list[str] = []
    threading.Timer(0.3, locker.release).start()  # the other program ends while the CLI waits
    assert store.close(wait_for_pending=10.0, on_wait=said.append) is None
    assert said == [f"Waiting for the history database {store.path}, locked by another program…"]
    assert prompts_on_disk(store.path) == ["before", "kept"]

    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    locker = Locker(store.path)
    store.keep_for_later(entry("lost"))
    lost = store.close(wait_for_pending=0.2)
    locker.release()
    assert lost.startswith("1 entry could not be added to the history yet (the pictures are kept): "
                           f"The history database {store.path} is locked by another program")
    assert lost.endswith("Studio adds it the next time it opens the history.")
    assert prompts_on_disk(store.path) == ["before", "kept"]
    reopened = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)  # the journal kept it
    assert prompts_on_disk(store.path) == ["before", "kept", "lost"]
    reopened.close()


def test_closing_says_what_was_lost_when_the_journal_could_not_be_written(tmp_path, monkeypatch):
    from studio.services.history_pending import PendingJournal

    monkeypatch.setattr(PendingJournal, "write", lambda self, entry: None)  # a full or read-only disk
    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    locker = Locker(store.path)
    store.keep_for_later(entry("lost"))
    lost = store.close(wait_for_pending=0.2)
    locker.release()
    assert lost.startswith("1 entry could not be added to the history, so it is not in it (the pictures are kept): "
                           f"The history database {store.path} is locked by another program")


def journal_folder(database: Path) -> Path:
    return database.with_name(database.name + ".pending")


def journal_files(database: Path) -> list[str]:
    folder = journal_folder(database)  # history.db.pending/
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_entries_kept_by_a_killed_studio_are_added_when_the_history_opens_again(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path, busy_timeout=0.1)
    store.add(entry("before"))
    locker = Locker(path)
    store.keep_for_later(entry("kept"))
    assert len(journal_files(path)) == 1
    del store  # killed: never closed, nothing written

    while_locked = HistoryStore(path, busy_timeout=0.1)  # opens at once, the entry kept for later
    assert while_locked.pending_count() == 1 and while_locked.notice is None
    locker.release()
    assert while_locked.add_pending().startswith("The history database is free again: 1 entry kept")
    assert prompts_on_disk(path) == ["before", "kept"] and journal_files(path) == []
    del while_locked

    again = HistoryStore(path, busy_timeout=0.1)
    assert prompts_on_disk(path) == ["before", "kept"] and again.pending_count() == 0
    again.close()


def test_journaled_entries_are_added_at_open_once_the_lock_is_gone(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path, busy_timeout=0.1)
    locker = Locker(path)
    store.keep_for_later(entry("one"))
    store.keep_for_later(entry("two"))
    del store
    locker.release()
    reopened = HistoryStore(path, busy_timeout=0.1)
    assert reopened.notice == "2 entries kept while the history database was locked were added to the history."
    assert prompts_on_disk(path) == ["one", "two"] and journal_files(path) == []
    assert reopened.pending_count() == 0
    reopened.close()


def test_an_entry_added_by_a_studio_killed_before_removing_its_journal_file_is_not_added_twice(tmp_path,
                                                                                              monkeypatch):
    from studio.services.history_pending import PendingJournal

    path = tmp_path / "history.db"
    store = HistoryStore(path, busy_timeout=0.1)
    locker = Locker(path)
    store.keep_for_later(entry("kept"))
    locker.release()
    with monkeypatch.context() as patched:
        patched.setattr(PendingJournal, "remove", lambda self, keys: None)  # killed right after the insert
        store.add_pending()
    assert prompts_on_disk(path) == ["kept"] and len(journal_files(path)) == 1
    del store

    reopened = HistoryStore(path, busy_timeout=0.1)
    assert prompts_on_disk(path) == ["kept"] and journal_files(path) == []
    assert reopened.pending_count() == 0 and reopened.notice is None
    reopened.close()


def test_a_damaged_journal_file_is_moved_aside_and_the_rest_is_added(tmp_path, caplog):
    path = tmp_path / "history.db"
    store = HistoryStore(path, busy_timeout=0.1)
    locker = Locker(path)
    store.keep_for_later(entry("kept"))
    del store
    locker.release()
    (journal_folder(path) / "00000000000000000001-broken.json").write_text('{"key": "00000000000000000001-br',
                                                                            encoding="utf-8")
    (journal_folder(path) / "00000000000000000002-odd.json").write_text(
        '{"key": "00000000000000000002-odd", "entry": {"prompt": "x", "outcome": "exploded"}}', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="studio.services.history_pending"):
        reopened = HistoryStore(path, busy_timeout=0.1)
    assert prompts_on_disk(path) == ["kept"]
    assert journal_files(path) == ["00000000000000000001-broken.json.damaged",
                                   "00000000000000000002-odd.json.damaged"]
    assert len(caplog.records) == 2 and all("moved aside" in r.getMessage() for r in caplog.records)
    reopened.close()
    assert HistoryStore(path, busy_timeout=0.1).pending_count() == 0  # set aside for good
