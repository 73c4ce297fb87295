"""Menu mnemonics (the underlined Alt+letter of a menu entry) for entries whose text comes from elsewhere: a filter's
title, a plugin's. Qt marks the letter after "&"; "&&" is a plain "&"."""

from __future__ import annotations

import re

_MARK = re.compile(r"&(.)")


def mnemonic(text: str) -> str | None:
    """The entry's Alt+letter, lower case, or None when it has none ("&&" is a plain "&", not a mnemonic)."""
    for match in _MARK.finditer(text):
        if match.group(1) != "&":
            return match.group(1).lower()
    return None


def plain(text: str) -> str:
    """The text as the menu shows it: "Colour &Transfer…" reads "Colour Transfer…"."""
    return _MARK.sub(r"\1", text)


def with_mnemonic(title: str, taken: set[str]) -> str:
    """``title`` as menu text, its Alt+letter the first letter of a word not in ``taken``, else any letter not in it
    (added to ``taken``); with every letter taken, none. An "&" in the title stays an "&"."""
    words = [match.start() for match in re.finditer(r"\b[^\W\d_]", title)]
    letters = [i for i, char in enumerate(title) if char.isalpha()]
    at = next((i for i in (*words, *letters) if title[i].lower() not in taken), None)
    escaped = title.replace("&", "&&")
    if at is None:
        return escaped
    taken.add(title[at].lower())
    return escaped[:at + title[:at].count("&")] + "&" + escaped[at + title[:at].count("&"):]
