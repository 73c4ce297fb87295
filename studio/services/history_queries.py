"""Reading the history: entries by id, searches and counts, the models and prompts used, the files entries use."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from studio.services.history_connection import HistoryConnection
from studio.services.history_entry import SELECT_SQL, HistoryEntry, entry_from_row
from studio.services.history_file_uses import controls_referenced, referenced
from studio.services.history_index_repair import repairs_index
from studio.services.history_query import (
    NEWEST_FIRST,
    NEWEST_OF_EACH_MODEL,
    HistoryQuery,
    created_follows_id,
    fold,
    fts_query,
    ids_sql,
    stored_spellings,
    unspaced_words,
    where_sql,
)

RECENT_PROMPTS = 1000  # earlier prompts the prompt box offers (Up/Down, completion)
_ID_CHUNK = 500  # ids per "IN (...)" query, well under every SQLite's variable limit
SQLITE_MAX_INT = 2**63 - 1


def _spellings(conn: sqlite3.Connection, query: HistoryQuery) -> list[str]:
    return [] if query.model is None else stored_spellings(conn, query.model)


class HistoryQueries(HistoryConnection):
    """What a HistoryStore reads (a store opened read-only can do all of it)."""

    @repairs_index
    def get(self, entry_id: int) -> HistoryEntry | None:
        if not -SQLITE_MAX_INT <= entry_id <= SQLITE_MAX_INT:
            return None  # no row has it (SQLite's integers are 64-bit)
        with self._errors():
            row = self._conn().execute(f"{SELECT_SQL} WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else entry_from_row(row)

    @repairs_index
    def search_ids(self, query: HistoryQuery = HistoryQuery(), limit: int | None = None) -> list[int]:
        """Ids of the entries matching query, newest first (a gallery fetches the entries page by page)."""
        with self._errors():
            conn = self._conn()
            sql, args = ids_sql(query, created_follows_id(conn), _spellings(conn, query))
            if limit is not None:
                sql += " LIMIT ?"
                args.append(min(max(0, int(limit)), SQLITE_MAX_INT))
            return [row[0] for row in conn.execute(sql, args)]

    @repairs_index
    def entries(self, ids: Sequence[int]) -> list[HistoryEntry]:
        """The entries with these ids, in the order given (ids that no longer exist are skipped)."""
        found: dict[int, HistoryEntry] = {}
        with self._errors():
            conn = self._conn()
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = list(ids[start:start + _ID_CHUNK])
                marks = ", ".join("?" for _ in chunk)
                for row in conn.execute(f"{SELECT_SQL} WHERE id IN ({marks})", chunk):
                    entry = entry_from_row(row)
                    found[entry.id] = entry
        return [found[i] for i in ids if i in found]

    def search(self, query: HistoryQuery = HistoryQuery(), limit: int | None = 50) -> list[HistoryEntry]:
        """The entries matching query, newest first."""
        # Ids first, then the rows: sorting only (created, id) pairs is much cheaper than whole rows.
        return self.entries(self.search_ids(query, limit))

    @repairs_index
    def count(self, query: HistoryQuery = HistoryQuery()) -> int:
        match = fts_query(query.text)
        indexed_only = match and not unspaced_words(query.text)
        if indexed_only and replace(query, text="") == HistoryQuery():  # words only: the index alone knows
            sql, args = "SELECT count(*) FROM entries_fts WHERE entries_fts MATCH ?", [match]
            with self._errors():
                return self._conn().execute(sql, args).fetchone()[0]
        with self._errors():
            conn = self._conn()
            where, args = where_sql(query, _spellings(conn, query))
            return conn.execute(f"SELECT count(*) FROM entries{where}", args).fetchone()[0]

    @repairs_index
    def recorded_files(self, paths: Sequence[str]) -> set[str]:
        """Which of these files (full paths) an entry points at: its picture, source picture or mask, or a control
        picture kept for its guides. Writing over one would make the entry show another picture."""
        if not paths:
            return set()
        with self._errors():
            conn = self._conn()
            return referenced(conn, list(paths)) | controls_referenced(conn, list(paths))

    @repairs_index
    def models(self) -> list[str]:
        """The distinct model names in the history, sorted (for the model filter).

        Names differing only in case (DreamShaper, dreamshaper) are one model to the filter, which folds case:
        listed once, as most recently written."""
        with self._errors():  # a seek or two per stored name (no read of every row); spellings merged here
            rows = self._conn().execute(NEWEST_OF_EACH_MODEL).fetchall()
        newest: dict[str, tuple[float, str]] = {}
        for name, created in rows:
            if fold(name) not in newest or created > newest[fold(name)][0]:
                newest[fold(name)] = (created, name)
        return sorted((name for _, name in newest.values()), key=lambda name: (fold(name), name))

    @repairs_index
    def recent_prompts(self, limit: int = RECENT_PROMPTS) -> list[str]:
        """Distinct prompts, most recently used first (for Up/Down recall and completion)."""
        prompts: dict[str, None] = {}
        with self._errors():
            cursor = self._conn().execute(f"SELECT prompt FROM entries WHERE prompt != '' {NEWEST_FIRST}")
            try:
                while len(prompts) < limit and (rows := cursor.fetchmany(256)):
                    for (prompt,) in rows:
                        prompts.setdefault(prompt)
                        if len(prompts) >= limit:
                            break
            finally:
                cursor.close()
        return list(prompts)
