"""Temp files made beside the file they will become, named so they fit the file system's 255-byte limit.

The name is ".<final name>.<8 random characters>.part": an interrupted write is recognisable as a leftover and
never taken for the file itself. A 241..255-byte final name is legal and must be saved, not refused by its own temp
file, so the final name is cut short inside the temp name when needed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# mkstemp adds 8 random characters; with the dots and ".part" the temp name is 15 bytes longer than its stem.
_TEMP_NAME_EXTRA = 15
NAME_MAX = 255  # bytes, on ext4, tmpfs, btrfs, XFS, NTFS (in UTF-16 units, fewer than bytes) and APFS


def temp_stem(name: str) -> str:
    """``name`` cut short enough that its temp file's name still fits in NAME_MAX bytes."""
    while len(os.fsencode(name)) + _TEMP_NAME_EXTRA > NAME_MAX:
        name = name[:-1]
    return name


def temp_file_beside(path: Path) -> tuple[int, str]:
    """A new, empty temp file in ``path``'s folder, open for writing: (file descriptor, its path)."""
    return tempfile.mkstemp(prefix=f".{temp_stem(path.name)}.", suffix=".part", dir=path.parent)
