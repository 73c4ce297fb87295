"""history_file_watch: the history database file removed, replaced or overwritten while Studio runs: the store
notices before it writes, starts a new database at the path, says so once, and keeps every later entry there."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from history_testing import entry, prompts_on_disk

from studio.services.history_store import HistoryStore


def in_thread(call):  # noqa: ANN001, ANN201 - the gallery reads on another thread, with its own connection
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join()
    return result[0]


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "data" / "history.db")
    yield s
    s.close()


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def test_entries_after_the_database_was_removed_go_to_a_new_one_with_a_sentence(store):
    store.add(entry("before"))
    in_thread(store.models)  # a reading thread has its own connection to the old file too
    remove_database(store.path)
    store.add(entry("after 1"))
    assert in_thread(lambda: [e.prompt for e in store.search()]) == ["after 1"]
    store.add(entry("after 2"))
    assert store.take_news() == [
        f"The history database {store.path} was removed while Studio ran; a new one was started there, and the "
        "entries made before are gone from the history (their pictures are kept)."]
    assert store.take_news() == []  # said once
    store.close()
    assert prompts_on_disk(store.path) == ["after 1", "after 2"]  # on disk: found again after a restart


def test_a_reader_first_after_the_removal_starts_the_new_database_not_an_empty_file(store):
    store.add(entry("before"))
    remove_database(store.path)
    assert in_thread(store.models) == []  # was "no such table: entries" (a bare file made by the connection)
    store.add(entry("after"))
    assert [e.prompt for e in in_thread(store.search)] == ["after"]
    assert len(store.take_news()) == 1


def test_garbage_written_over_the_database_is_set_aside_and_the_next_entry_kept(store):
    store.add(entry("before"))
    for suffix in ("-wal", "-shm"):
        store.path.with_name(store.path.name + suffix).unlink()
    store.path.write_bytes(b"garbage" * 2000)  # in place: the same file, so only SQLite can tell
    assert in_thread(store.search) == []  # the gallery's search: was "is damaged … the next time it starts"
    store.add(entry("after garbage"))
    news = store.take_news()
    assert len(news) == 1 and "was damaged while Studio ran, so Studio set it aside as history.db.corrupt-" in news[0]
    assert [e.prompt for e in in_thread(store.search)] == ["after garbage"]
    store.close()
    assert prompts_on_disk(store.path) == ["after garbage"]
    assert len(list(store.path.parent.glob("history.db.corrupt-*"))) == 1


def test_a_garbage_file_put_in_the_database_s_place_is_set_aside(store):
    store.add(entry("before"))
    remove_database(store.path)
    store.path.write_bytes(b"garbage" * 2000)
    assert [e.prompt for e in in_thread(store.search)] == []
    store.add(entry("after"))
    assert "was replaced by a damaged file while Studio ran" in store.take_news()[0]
    store.close()
    assert prompts_on_disk(store.path) == ["after"]
