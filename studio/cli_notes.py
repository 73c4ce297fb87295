"""How the ``studio`` command says, on stderr, something a person should know that did not stop it: every such
notice in one form, ``note: <sentence>``, whichever command or layer it comes from. What ends a command (a refusal,
a failure) is ``studio: <sentence>`` instead, so a person, or a script reading stderr, tells the two apart."""

from __future__ import annotations

import sys

from studio.core.safe_text import escaped

NOTE_PREFIX = "note: "


def say_note(text: str) -> None:
    """One notice on stderr. Escaped: notes quote files and plugins (a terminal escape is printed, not obeyed)."""
    print(f"{NOTE_PREFIX}{escaped(text)}", file=sys.stderr)
