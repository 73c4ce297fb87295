"""The sentences' building blocks in studio.core.errors."""

from __future__ import annotations

import errno

import pytest

from studio.core.errors import first_line, os_reason


@pytest.mark.parametrize(("exc", "reason"), [
    (OSError(errno.EACCES, "Permission denied", "/x/y.png"), "Permission denied"),  # the system's words, no path
    (OSError("The disk went away."), "The disk went away"),  # no strerror: the message, without its full stop
    (PermissionError(errno.EROFS, "Read-only file system."), "Read-only file system"),
    (OSError(), ""),
])
def test_os_reason_is_the_system_words_without_a_full_stop(exc, reason):
    assert os_reason(exc) == reason


def test_first_line_is_the_message_first_line_or_the_class_name():
    assert first_line(ValueError("bad value.\nmore")) == "bad value"
    assert first_line(KeyError()) == "KeyError"
