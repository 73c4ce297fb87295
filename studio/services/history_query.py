"""The history's queries: what to find (HistoryQuery), the person's words made into a safe FTS5 query, and the
filters as SQL."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NEWEST_FIRST = "ORDER BY created DESC, id DESC"


@dataclass(frozen=True)
class HistoryQuery:
    text: str = ""  # words to find in prompts and negative prompts (plain words, not FTS syntax)
    model: str | None = None  # model name, matched without regard to case (as the words are)
    since: float | None = None  # created >= since (epoch seconds)
    until: float | None = None  # created < until
    starred_only: bool = False
    outcome: str | None = None  # ok | failed | cancelled; None: all


def fts_query(text: str) -> str:
    """The person's words as a safe FTS5 query: each word a quoted phrase, all required, the last a prefix
    (search as you type: it may be unfinished) unless a space follows it.

    Nothing the person types is FTS syntax: quotes are doubled inside the phrases, and words with no
    letters or digits (which the tokenizer would drop, making an empty phrase) are left out.
    Returns "" when nothing searchable remains.
    """
    text = _separated(text)
    words = [w for w in text.split() if any(_is_token_char(c) for c in w) and not _unspaced(w)]
    if not words:
        return ""
    terms = ['"' + w.replace('"', '""') + '"' for w in words]
    if text.split()[-1] == words[-1] and not text[-1].isspace():
        terms[-1] += "*"
    return " ".join(terms)


def unspaced_words(text: str) -> list[str]:
    """The words the full-text index cannot find, matched as substrings of the prompts instead: those in scripts
    written without spaces (Chinese, Japanese, Thai…), whose whole run the unicode61 tokenizer takes as one token
    (猫 would miss 一只可爱的猫), and those with symbols such as emoji, which it drops (🦊 would match everything)."""
    return list(dict.fromkeys(fold(w) for w in _separated(text).split() if _unspaced(w)))


def fold(text: str) -> str:
    """Case folding for matching words inside prompts: Python's full Unicode rules (É, Α, ß…), applied to the
    words here and to the prompts in SQL through the same function (SQLite's own lower() folds ASCII only)."""
    return text.casefold()


def _sql_fold(value: object) -> object:
    return fold(value) if isinstance(value, str) else value


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions these queries use, on a new connection."""
    conn.create_function("studio_fold", 1, _sql_fold, deterministic=True)


def _separated(text: str) -> str:
    # Control characters separate words (a NUL would end the query inside SQLite), and so do lone surrogates
    # (bytes a terminal passed on that are not UTF-8), which SQLite cannot take.
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)


_UNSPACED_SCRIPTS = ("CJK ", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA", "IDEOGRAPHIC", "THAI", "LAO", "KHMER",
                     "MYANMAR", "TIBETAN")


def _unspaced(word: str) -> bool:
    return any(unicodedata.category(c) == "So" or unicodedata.name(c, "").startswith(_UNSPACED_SCRIPTS) for c in word)


def _is_token_char(char: str) -> bool:
    # FTS5's unicode61 tokenizer: letters, numbers and private-use characters make tokens.
    return unicodedata.category(char)[0] in "LN" or unicodedata.category(char) == "Co"


def created_follows_id(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = 'created_follows_id'").fetchone()
    return bool(row and row[0])


# Each stored model name once, by one seek of the index entries_model per name (a skip-scan), not a read of every
# entry's index row: a few names over 200,000 entries take ~1 ms, where GROUP BY read them all (~30 ms).
_MODEL_NAMES = """
WITH RECURSIVE names(name) AS (
    SELECT min(model_name) FROM entries
    UNION ALL
    SELECT (SELECT min(model_name) FROM entries WHERE model_name > name) FROM names WHERE name IS NOT NULL
)"""
_DISTINCT_MODEL_NAMES = f"{_MODEL_NAMES} SELECT name FROM names WHERE name IS NOT NULL"
# With each name's newest time, one more seek per name: the index is (model_name, created), so max is its last row.
NEWEST_OF_EACH_MODEL = (f"{_MODEL_NAMES} SELECT name, (SELECT max(created) FROM entries WHERE model_name = name) "
                        "FROM names WHERE name IS NOT NULL AND name != ''")


def stored_spellings(conn: sqlite3.Connection, model: str) -> list[str]:
    """The model names in the history that fold to the same as model (DreamShaper, dreamshaper…), so that the
    filter can be `model_name IN (...)`, which the index serves, rather than folding every row's name in SQL."""
    wanted = fold(model)
    return [name for (name,) in conn.execute(_DISTINCT_MODEL_NAMES) if fold(name) == wanted]


def ids_sql(query: HistoryQuery, created_follows_id: bool,
            model_names: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """SQL for the ids matching query, newest first; model_names: the stored_spellings of query.model.

    While every row's time is no earlier than the row before it (schema 3 keeps that flag), highest id
    first IS newest first, and a text search reads its ids in order straight from the full-text index.
    """
    match = fts_query(query.text)
    if match and created_follows_id:
        filters, args = _filters(query, model_names)
        if not filters:
            return "SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? ORDER BY rowid DESC", [match]
        sql = ("SELECT entries.id FROM entries_fts JOIN entries ON entries.id = entries_fts.rowid "
               f"WHERE entries_fts MATCH ? AND {' AND '.join(filters)} ORDER BY entries_fts.rowid DESC")
        return sql, [match, *args]
    where, args = where_sql(query, model_names)
    return f"SELECT id FROM entries{where} {NEWEST_FIRST}", args


def where_sql(query: HistoryQuery, model_names: Sequence[str] = ()) -> tuple[str, list[Any]]:
    clauses, args = _filters(query, model_names)
    match = fts_query(query.text)
    if match:
        clauses.insert(0, "id IN (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?)")
        args.insert(0, match)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _filters(query: HistoryQuery, model_names: Sequence[str]) -> tuple[list[str], list[Any]]:
    """Everything but the indexed words, as SQL conditions on entries' columns."""
    clauses: list[str] = []
    args: list[Any] = []
    if query.model is not None:
        # Folded like the words (`--model dreamshaper` finds DreamShaper; SQLite's NOCASE folds ASCII only), but
        # in Python, over the few stored names (stored_spellings): the names go to SQL, and the index finds them.
        # With starred_only, the unary + keeps SQLite on the starred entries' index (a few rows, already in time
        # order) rather than reading every entry of the model to check its star.
        column = "+model_name" if query.starred_only else "model_name"
        clauses.append(f"{column} IN ({', '.join('?' for _ in model_names)})" if model_names else "0")
        args += model_names
    if query.since is not None:
        clauses.append("created >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("created < ?")
        args.append(query.until)
    if query.starred_only:
        clauses.append("starred")  # exactly the partial index's condition, so it is used
    if query.outcome is not None:
        clauses.append("outcome = ?")
        args.append(query.outcome)
    for word in unspaced_words(query.text):  # a scan of the prompts, only for words the index cannot find
        clauses.append("(instr(studio_fold(entries.prompt), ?) > 0 "
                       "OR instr(studio_fold(entries.negative_prompt), ?) > 0)")
        args += [word, word]
    return clauses, args
