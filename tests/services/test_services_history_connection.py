"""history_connection: opening the database: migrations, a damaged file set aside, another process's lock,
connections per thread and a closed store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from history_testing import T0, ids_for
from history_testing import detailed_entry as entry

from studio.services import history_schema
from studio.services.history_errors import HistoryError, HistoryLocked
from studio.services.history_schema import SCHEMA_1, SCHEMA_VERSION, migrate
from studio.services.history_store import HistoryStore


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "data" / "history.db")
    yield s
    s.close()


# -- migrations ----------------------------------------------------------------------------

def make_schema_1_database(path: Path) -> None:
    """A history as the first Studio that had one left it: only migration 1, and rows in its columns."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, target=1)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    assert "source_mask_path" not in columns and "generator_version" not in columns
    conn.executemany(
        "INSERT INTO entries (created, prompt, negative_prompt, model_name, seed, steps, cfg_scale, sampler, width, "
        "height, params, outcome, image_path, source_image_path, starred) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(T0, "an old castle", "fog", "sd15", 1, 20, 7.0, "Euler a", 512, 512, '{"batch_index": 0}', "ok",
          "/out/1.png", None, 0),
         (T0 + 1, "a red fox", "", "sd15", 2, 25, 6.5, "DDIM", 512, 768, "{}", "ok", "/out/2.png", "/src/2.png", 1),
         (T0 + 2, "a red fox", "", "sdxl", 3, 30, 5.0, "Euler", 1024, 1024, "{}", "failed", None, None, 0)])
    conn.close()


def test_a_schema_1_database_is_migrated_with_its_rows_intact(tmp_path):
    path = tmp_path / "history.db"
    make_schema_1_database(path)
    store = HistoryStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 3
    assert store.notice is None
    old = store.search(limit=None)
    assert [(e.id, e.prompt, e.seed, e.sampler, e.height, e.outcome, e.starred) for e in old] == [
        (3, "a red fox", 3, "Euler", 1024, "failed", False),
        (2, "a red fox", 2, "DDIM", 768, "ok", True),
        (1, "an old castle", 1, "Euler a", 512, "ok", False)]
    assert old[2].params == {"batch_index": 0} and old[2].negative_prompt == "fog"
    assert old[1].source_image_path == "/src/2.png"
    assert all(e.source_mask_path is None and e.generator_version == "" for e in old)
    # The full-text index built by schema 1 still answers, and the new columns work.
    assert ids_for(store, text="fox") == [3, 2]
    assert ids_for(store, starred_only=True) == [2]
    new = store.add(entry(prompt="inpainted fox", source_image_path="/src/n.png", source_mask_path="/src/n-mask.png",
                          generator_version="0.1.0"))
    got = store.get(new)
    assert (got.source_mask_path, got.generator_version) == ("/src/n-mask.png", "0.1.0")
    assert ids_for(store, text="fox") == [new, 3, 2]
    store.close()
    # Opening again changes nothing.
    again = HistoryStore(path)
    assert again.schema_version() == 3 and again.count() == 4
    again.close()


def test_migrating_rows_made_out_of_time_order_keeps_newest_first_correct(tmp_path):
    path = tmp_path / "history.db"
    make_schema_1_database(path)
    conn = sqlite3.connect(path)
    with conn:  # a row recorded after a clock went back
        conn.execute("INSERT INTO entries (created, prompt) VALUES (?, 'a red fox, early')", (T0 - 5,))
    conn.close()
    store = HistoryStore(path)
    assert store._conn().execute("SELECT value FROM meta").fetchone() == (0,)
    assert ids_for(store, text="fox") == [3, 2, 4]
    assert ids_for(store) == [3, 2, 1, 4]
    store.close()


def test_a_failing_migration_leaves_the_previous_schema(tmp_path, monkeypatch):
    path = tmp_path / "history.db"
    make_schema_1_database(path)
    broken = "ALTER TABLE entries ADD COLUMN half_done TEXT;\nTHIS IS NOT SQL;"
    monkeypatch.setattr(history_schema, "MIGRATIONS", (SCHEMA_1, broken))
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, target=2)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "half_done" not in [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    conn.close()


def test_a_database_from_a_newer_studio_is_refused_not_replaced(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(HistoryError, match="newer version of Studio"):
        HistoryStore(path)
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


# -- damage and locks ----------------------------------------------------------------------

def aside_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_fresh_one_made(tmp_path):
    path = tmp_path / "history.db"
    garbage = b"this is not SQLite at all\n" * 400
    path.write_bytes(garbage)
    (tmp_path / "history.db-wal").write_bytes(b"stale wal")
    store = HistoryStore(path)
    aside = aside_files(tmp_path)
    assert [p.name for p in aside] == [f"{aside[0].name}", f"{aside[0].name}-wal"]
    assert aside[0].name.startswith("history.db.corrupt-")
    assert aside[0].read_bytes() == garbage  # kept, byte for byte
    assert store.notice and "damaged" in store.notice and aside[0].name in store.notice
    assert store.count() == 0
    store.add(entry())
    assert store.count() == 1
    store.close()
    reopened = HistoryStore(path)
    assert reopened.notice is None and reopened.count() == 1
    reopened.close()


def test_a_truncated_database_is_moved_aside(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add_many(entry(prompt=f"prompt number {i} " + "long words " * 30) for i in range(2000))
    store.close()
    size = path.stat().st_size
    assert size > 100_000 and not (tmp_path / "history.db-wal").exists()  # checkpointed on close
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    damaged = HistoryStore(path)
    assert damaged.notice is not None
    assert len(aside_files(tmp_path)) == 1 and aside_files(tmp_path)[0].stat().st_size == size // 2
    assert damaged.count() == 0
    damaged.close()


def test_a_damaged_page_found_by_quick_check_is_moved_aside(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add_many(entry(prompt=f"prompt number {i}") for i in range(3000))
    store.close()
    page_size = 4096
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries_created'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:  # scribble over the created index's root page, keeping the header intact
        f.seek((root - 1) * page_size + 8)
        f.write(os.urandom(page_size - 8))
    damaged = HistoryStore(path)
    assert damaged.notice is not None and len(aside_files(tmp_path)) == 1
    damaged.close()


LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[2] == "exclusive":
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("UPDATE entries SET starred = 1")
        conn.execute("COMMIT")  # in exclusive locking mode the lock stays after the commit
    else:
        conn.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
        conn.execute("UPDATE entries SET starred = 1")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.close()
""")


def hold_lock(path: Path, mode: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(10) == 0


def test_a_database_locked_by_another_process_is_not_mistaken_for_a_damaged_one(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add(entry())
    store.close()
    holder = hold_lock(path, "exclusive")
    try:
        started = time.perf_counter()
        with pytest.raises(HistoryLocked, match="locked by another program"):
            HistoryStore(path, busy_timeout=0.3)
        assert time.perf_counter() - started >= 0.25  # it waited for the lock first
    finally:
        release(holder)
    assert aside_files(tmp_path) == []  # nothing moved aside
    store = HistoryStore(path)
    assert store.notice is None and store.count() == 1 and store.get(1).starred
    store.close()


def test_a_writer_in_another_process_makes_writes_wait_then_fail_with_a_sentence(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path, busy_timeout=0.3)
    first = store.add(entry())
    holder = hold_lock(path, "immediate")
    try:
        other = HistoryStore(path, busy_timeout=0.3)  # WAL: opening and reading go on during a write
        assert other.notice is None and other.search_ids() == [first]
        with pytest.raises(HistoryLocked):
            store.add(entry(prompt="second"))
        other.close()
    finally:
        release(holder)
    assert store.add(entry(prompt="second")) == first + 1
    assert aside_files(tmp_path) == []
    store.close()


def test_store_settings_wal_and_connection_per_thread(store):
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    other: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: other.append(store._conn()))
    thread.start()
    thread.join()
    assert other[0] is not conn
    with pytest.raises(sqlite3.ProgrammingError):  # check_same_thread stays on
        other[0].execute("SELECT 1")


def test_a_closed_store_refuses_use(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    store.close()
    with pytest.raises(HistoryError, match="closed"):
        store.count()
