"""A folder's stamp: what changes when an entry in it is added, removed, replaced or rewritten. The plugin host
compares stamps to tell whether another Studio changed the plugins folder, the dependency checks to tell whether
what they read from a folder's installed distributions still holds; neither reads anything again otherwise."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

FolderStamp = tuple[int, int, tuple[tuple[str, int, int], ...]]


def folder_stamp(folder: Path, keep: Callable[[str], bool]) -> FolderStamp | None:
    """The folder's inode and modification time (an entry added, removed or renamed in: a new name or a swapped
    one) and, for each entry whose name ``keep`` takes, its name, inode and modification time (an entry replaced or
    rewritten in place). None when the folder cannot be read."""
    try:
        with os.scandir(folder) as entries:
            kept = sorted((e.name, e.inode(), e.stat(follow_symlinks=False).st_mtime_ns) for e in entries
                          if keep(e.name))
        stat = folder.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, tuple(kept)
