"""history_journal: entries kept while another program held the history database's lock are journaled, so a Studio
killed before the lock goes loses none; the next open adds them, never twice, and sets a damaged journal file aside."""

from __future__ import annotations

import logging
from pathlib import Path

from history_testing import Locker, entry, prompts_on_disk

from studio.services.history_store import HistoryStore


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
    from studio.services.history_journal import PendingJournal

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
    with caplog.at_level(logging.WARNING, logger="studio.services.history_journal"):
        reopened = HistoryStore(path, busy_timeout=0.1)
    assert prompts_on_disk(path) == ["kept"]
    assert journal_files(path) == ["00000000000000000001-broken.json.damaged",
                                   "00000000000000000002-odd.json.damaged"]
    assert len(caplog.records) == 2 and all("moved aside" in r.getMessage() for r in caplog.records)
    reopened.close()
    assert HistoryStore(path, busy_timeout=0.1).pending_count() == 0  # set aside for good
