"""A folder's stamp changes when what it keeps changes, and only then."""

from __future__ import annotations

import os
from pathlib import Path

from studio.plugin_host.folder_stamp import folder_stamp


def _not_hidden(name: str) -> bool:
    return not name.startswith(".")


def test_a_folder_stamp_changes_with_the_entries_it_keeps_only(tmp_path: Path):
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / ".lock").write_text("")
    stamp = folder_stamp(tmp_path, _not_hidden)
    assert stamp is not None and [name for name, _, _ in stamp[2]] == ["state.json"]
    assert folder_stamp(tmp_path, _not_hidden) == stamp  # nothing changed: the same stamp
    os.utime(tmp_path / ".lock", ns=(1, 1))  # an entry it does not keep, rewritten in place
    assert folder_stamp(tmp_path, _not_hidden) == stamp
    os.utime(tmp_path / "state.json", ns=(1, 1))  # one it keeps: rewritten in place, the folder unchanged
    assert folder_stamp(tmp_path, _not_hidden) != stamp


def test_a_folder_that_cannot_be_read_has_no_stamp(tmp_path: Path):
    assert folder_stamp(tmp_path / "missing", _not_hidden) is None
