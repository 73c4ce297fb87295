"""Copies of a settings file Studio could not read whole, kept beside it, never one over another: an earlier copy
may be the only one left of a person's styles and presets."""

from __future__ import annotations

from pathlib import Path

ASIDE_SUFFIX = ".broken"
MAX_COPIES = 1000


def keep_aside(file: Path, data: bytes) -> Path:
    """``data`` (``file`` as Studio found it) kept as ``<file>.broken``, or ``.broken-2``, ``-3`` … where that name
    holds something else already. A copy with the same bytes is kept once: a file each ``studio`` command reads again
    (and none saves) must not leave a copy per command. Raises OSError when no copy could be written."""
    from studio.core.images import write_atomically  # Pillow and numpy: only when a copy is needed

    for number in range(1, MAX_COPIES + 1):
        aside = file.with_name(f"{file.name}{ASIDE_SUFFIX}" + (f"-{number}" if number > 1 else ""))
        try:
            if aside.read_bytes() == data:
                return aside
            continue  # another version of the file: kept as it is
        except FileNotFoundError:
            pass
        except OSError:  # a folder or an unreadable file by that name: not ours to replace
            continue
        try:
            write_atomically(aside, data, exclusive=True)
        except FileExistsError:  # taken meanwhile (another Studio starting): the next name
            continue
        return aside
    raise OSError(f"{MAX_COPIES} copies of {file.name} are kept beside it already")


def where(aside: Path) -> str:
    """The copy's name and folder, for a sentence."""
    return f"{aside.name} (in {aside.parent})"
