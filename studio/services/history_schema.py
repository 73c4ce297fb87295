"""The history database's schema, as an ordered list of migrations (``PRAGMA user_version`` = how many ran).

Never edit a migration that has shipped: add a new one at the end. Each runs in its own
transaction together with the ``user_version`` bump, so a crash leaves the old schema or the new one.
"""

from __future__ import annotations

import sqlite3

# Schema 1: the first schema. Entries, newest-first / model / starred indexes, and a full-text
# index over prompt and negative prompt (FTS5 external content, kept in step by triggers).
# Prefix indexes for 2 and 3 characters keep search-as-you-type fast on short last words.
SCHEMA_1 = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an id names one entry for good
    created REAL NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    model_hash TEXT NOT NULL DEFAULT '',
    model_path TEXT NOT NULL DEFAULT '',
    seed INTEGER NOT NULL DEFAULT -1,
    steps INTEGER NOT NULL DEFAULT 0,
    cfg_scale REAL NOT NULL DEFAULT 0,
    sampler TEXT NOT NULL DEFAULT '',
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    strength REAL,
    generator TEXT NOT NULL DEFAULT 'diffusers',
    postprocess TEXT NOT NULL DEFAULT '[]',
    params TEXT NOT NULL DEFAULT '{}',
    outcome TEXT NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'failed', 'cancelled')),
    message TEXT NOT NULL DEFAULT '',
    elapsed REAL,
    image_path TEXT,
    source_image_path TEXT,
    starred INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX entries_created ON entries (created);
CREATE INDEX entries_model ON entries (model_name, created);
CREATE INDEX entries_starred ON entries (created) WHERE starred;
CREATE VIRTUAL TABLE entries_fts USING fts5 (
    prompt, negative_prompt,
    content = 'entries', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
    INSERT INTO entries_fts (rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
    INSERT INTO entries_fts (entries_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER entries_fts_update AFTER UPDATE OF prompt, negative_prompt ON entries BEGIN
    INSERT INTO entries_fts (entries_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO entries_fts (rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
END;
"""

# Schema 2: inpainting keeps its mask next to its source picture, and plugin generators record
# their version, so an entry can be restored whole and its maker named exactly.
SCHEMA_2 = """
ALTER TABLE entries ADD COLUMN source_mask_path TEXT;
ALTER TABLE entries ADD COLUMN generator_version TEXT NOT NULL DEFAULT '';
"""

# Schema 3: remember whether "newest first" is simply "highest id first" (true while every row is added
# with a time no earlier than the row before it, as Studio adds them). Then a full-text search reads its
# ids already in order from the index, with no sort, which keeps broad searches (the first letter typed)
# fast. The triggers keep the flag true to the rows whoever writes them; once false it stays false.
SCHEMA_3 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO meta (key, value) SELECT 'created_follows_id', NOT EXISTS (
    SELECT 1 FROM (SELECT created < lag(created) OVER (ORDER BY id) AS back FROM entries) WHERE back);
CREATE TRIGGER entries_order_insert AFTER INSERT ON entries
WHEN new.created < (SELECT created FROM entries WHERE id < new.id ORDER BY id DESC LIMIT 1)
  OR new.created > (SELECT created FROM entries WHERE id > new.id ORDER BY id LIMIT 1)
BEGIN
    UPDATE meta SET value = 0 WHERE key = 'created_follows_id';
END;
CREATE TRIGGER entries_order_update AFTER UPDATE OF id, created ON entries BEGIN
    UPDATE meta SET value = 0 WHERE key = 'created_follows_id';
END;
"""

MIGRATIONS: tuple[str, ...] = (SCHEMA_1, SCHEMA_2, SCHEMA_3)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchemaError(Exception):
    """The database was written by a newer Studio (its user_version is above SCHEMA_VERSION)."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to schema ``target``, one migration per transaction. Returns the old version.

    ``conn`` must be in autocommit mode (isolation_level=None): the transactions are explicit.
    """
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise NewerSchemaError(current)
    if current >= target:
        return current
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another connection may have migrated while we waited for the write lock.
            if schema_version(conn) >= version:
                conn.execute("COMMIT")
                continue
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit; these must share one transaction)."""
    statements, buffer = [], ""
    for line in script.strip().splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
