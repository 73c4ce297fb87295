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
    """``text`` with every such character shown escaped (``\\x1b``), so a terminal prints it instead of obeying it."""
    out = []
    for char in text:
        if char not in allowed and unicodedata.category(char) in HIDING:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)
