"""Text from outside (a plugin's manifest, a recorded prompt) shown to the person as text, never as commands.

Control and format characters are what a terminal escape, a carriage return over a line already printed or a
right-to-left override is made of: they are refused where text is checked, and escaped where it is printed.
"""

from __future__ import annotations

import unicodedata

HIDING = ("Cc", "Cf", "Zl", "Zp")  # control, format (bidi overrides, zero-width), line and paragraph separators


def hidden_character(text: str, allowed: str = "") -> str | None:
    """The first character of ``text`` that could disguise what is shown (not in ``allowed``), as U+XXXX."""
    for char in text:
        if char not in allowed and unicodedata.category(char) in HIDING:
            return f"U+{ord(char):04X}"
    return None


def escaped(text: str, allowed: str = "\n") -> str:
    """``text`` with every character that is not printable (but those in ``allowed``) written as Python writes it
    in a string (``\x1b``, ``\r``, ``\u202e``), so a terminal prints it instead of obeying it."""
    if text.isprintable():
        return text
    return "".join(char if char in allowed or char.isprintable() else repr(char)[1:-1] for char in text)
