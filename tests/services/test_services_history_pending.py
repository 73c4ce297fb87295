"""history_pending: entries that could not be written while another program held the history database's lock are
kept, and written once the lock is gone (or when closing, saying what was lost when it never is)."""

from __future__ import annotations

import logging
import threading

import pytest

from history_testing import Locker, entry, prompts_on_disk

from studio.services.history_store import HistoryStore


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


def test_closing_waits_for_the_lock_to_write_kept_entries_or_says_what_was_lost(tmp_path, caplog):
    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    store.add(entry("before"))
    locker = Locker(store.path)
    store.keep_for_later(entry("kept"))
    said: list[str] = []
    threading.Timer(0.3, locker.release).start()  # the other program ends while the CLI waits
    assert store.close(wait_for_pending=10.0, on_wait=said.append) == (
        "The history database is free again: 1 entry kept while it was locked was added to the history.")
    assert said == [f"Waiting for the history database {store.path}, locked by another program…"]
    assert prompts_on_disk(store.path) == ["before", "kept"]

    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    locker = Locker(store.path)
    store.keep_for_later(entry("lost"))
    with caplog.at_level(logging.WARNING, logger="studio.services.history_store"):
        lost = store.close(wait_for_pending=0.2)
    locker.release()
    assert lost == ("1 entry could not be added to the history yet (the pictures are kept): Another program still "
                    f"holds the lock on the history database {store.path}. Studio adds it the next time it opens "
                    "the history.")
    said_by_store = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "studio.services.history_store"]
    assert said_by_store == [("WARNING", lost)]  # journaled: not lost (the first close's INFO line is another logger's)
    assert lost.endswith("Studio adds it the next time it opens the history.")
    assert prompts_on_disk(store.path) == ["before", "kept"]
    reopened = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)  # the journal kept it
    assert prompts_on_disk(store.path) == ["before", "kept", "lost"]
    reopened.close()


def test_closing_says_what_was_lost_when_the_journal_could_not_be_written(tmp_path, monkeypatch, caplog):
    from studio.services.history_journal import PendingJournal

    monkeypatch.setattr(PendingJournal, "write", lambda self, entry: None)  # a full or read-only disk
    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    locker = Locker(store.path)
    store.keep_for_later(entry("lost"))
    with caplog.at_level(logging.WARNING, logger="studio.services.history_store"):
        lost = store.close(wait_for_pending=0.2)
    locker.release()
    assert lost == ("1 entry could not be added to the history, so it is not in it (the pictures are kept): "
                    f"Another program still holds the lock on the history database {store.path}.")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", lost)]
