"""studio.core.paths: telling a symbolic link loop from other paths that cannot be read."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from studio.core.paths import is_link_loop, link_loop_problem, real_path_or_loop

_real_resolve = Path.resolve


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def _resolve_as_in_python_313(self: Path, strict: bool = False) -> Path:
    """Python 3.13's resolve(): a non-strict resolve of a loop returns a path instead of raising."""
    if strict:
        return _real_resolve(self, strict=True)
    return Path(os.path.abspath(self))


def test_a_loop_is_a_loop_and_resolves_to_its_absolute_path(tmp_path: Path) -> None:
    loop = _loop(tmp_path)
    assert is_link_loop(loop)
    assert real_path_or_loop(loop) == (loop.absolute(), True)
    assert "is a loop of symbolic links" in link_loop_problem(loop)


def test_a_loop_is_told_where_a_non_strict_resolve_does_not_raise(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    loop = _loop(tmp_path)
    monkeypatch.setattr(Path, "resolve", _resolve_as_in_python_313)
    assert is_link_loop(loop)
    assert real_path_or_loop(loop) == (loop.absolute(), True)


def test_a_dangling_link_is_not_a_loop(tmp_path: Path) -> None:
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nothing-here")
    assert not is_link_loop(dangling)
    assert link_loop_problem(dangling) == ""
    assert real_path_or_loop(dangling) == ((tmp_path / "nothing-here").resolve(), False)


def test_a_path_without_permission_is_not_a_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self: Path, strict: bool = False) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "resolve", refused)
    assert not is_link_loop(tmp_path / "locked")
    assert real_path_or_loop(tmp_path / "locked") == ((tmp_path / "locked").absolute(), False)


def test_a_plain_file_resolves(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "link.txt").symlink_to(tmp_path / "f.txt")
    assert not is_link_loop(tmp_path / "link.txt")
    assert real_path_or_loop(tmp_path / "link.txt") == ((tmp_path / "f.txt").resolve(), False)
