"""``state.json`` in the plugins folder: which plugins are on, kept across sessions.

Every Studio using the folder (a window, a ``studio plugins disable`` beside it) reads and writes it, so a change
is read, made and written as one step under a file lock; a damaged file is set aside, never overwritten, and
said once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import StudioError, os_reason
from studio.core.images import write_atomically

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_SET_ASIDE = "state.json.broken"  # a damaged state.json, kept (then state.json.broken-2, …)
STATE_LOCK = ".state.lock"  # held while state.json is read, changed and written
STATE_LOCK_TIMEOUT = 30.0  # seconds; each holder holds it for a file read and write


class DamagedState(Exception):
    """state.json cannot be read as ``{"enabled": [plugin ids]}``; the message says why, for a sentence."""


class EnabledState:
    """The enabled plugin ids in ``plugins_dir/state.json``."""

    def __init__(self, plugins_dir: Path) -> None:
        self.plugins_dir = plugins_dir
        self.notice = ""  # what became of a damaged state.json, until a plugin is enabled or disabled

    def read(self) -> set[str]:
        """The plugins state.json has on. A damaged one is set aside and said (``notice``): none is on."""
        from filelock import (
            FileLock,  # here, not at import: the window's first frame does not wait for it
        )

        try:
            return _read_enabled(self.plugins_dir / STATE_FILE)
        except DamagedState as damage:
            first = damage
        try:
            # Under the lock: another Studio may be setting it aside, or writing a good one, at the same time.
            with FileLock(self.plugins_dir / STATE_LOCK, timeout=STATE_LOCK_TIMEOUT):
                return self._read_or_set_aside()
        except OSError as exc:  # the lock cannot be had (a read-only folder; filelock's Timeout is one too)
            self._say_damaged(first, f" nor set aside ({os_reason(exc)}); all plugins are off.")
            return set()

    def change(self, change: Callable[[set[str]], None]) -> None:
        """Read the enabled ids, let ``change`` add or remove some (or refuse, raising) and write them back.

        Another Studio may change the file at the same time: read, change and write it as one step, or one of
        the changes is lost."""
        from filelock import (  # here, not at import: the window's first frame does not wait for it
            FileLock,
            Timeout,
        )

        try:
            self.plugins_dir.mkdir(parents=True, exist_ok=True)
            with FileLock(self.plugins_dir / STATE_LOCK, timeout=STATE_LOCK_TIMEOUT):
                ids = self._read_or_set_aside()
                change(ids)
                write_atomically(self.plugins_dir / STATE_FILE,
                                 json.dumps({"enabled": sorted(ids)}, indent=2).encode("utf-8"))
            self.notice = ""  # the person has acted on it
        except Timeout:
            raise StudioError(f"Could not save which plugins are on in {self.plugins_dir}: another Studio kept it "
                              f"busy for {STATE_LOCK_TIMEOUT:g} s; try again.") from None
        except OSError as exc:
            raise StudioError(f"Could not save which plugins are on in {self.plugins_dir}: {os_reason(exc)}.") \
                from exc

    def _read_or_set_aside(self) -> set[str]:
        """read, with the state lock held: a damaged state.json is moved aside, never over an earlier copy, so
        that the next change, which writes a new one, loses nothing."""
        state = self.plugins_dir / STATE_FILE
        try:
            return _read_enabled(state)
        except DamagedState as damage:
            problem = damage
        aside, n = state.with_name(STATE_SET_ASIDE), 1
        while os.path.lexists(aside):
            n += 1
            aside = state.with_name(f"{STATE_SET_ASIDE}-{n}")
        try:
            os.rename(state, aside)
        except OSError as exc:
            self._say_damaged(problem, f" nor set aside ({os_reason(exc)}); all plugins are off.")
        else:
            self._say_damaged(problem, f"; it was set aside as {aside.name} and all plugins are off until you "
                                       "enable them again.")
        return set()

    def _say_damaged(self, problem: DamagedState, then: str) -> None:
        notice = f"The list of enabled plugins in {self.plugins_dir / STATE_FILE} could not be read ({problem}){then}"
        if notice != self.notice:  # (logged once, not at every look at the list)
            log.warning(notice)
            self.notice = notice


def _read_enabled(state: Path) -> set[str]:
    try:
        data = json.loads(state.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return set()  # none was ever enabled (or there is no plugins folder, which installing says)
    except OSError as exc:
        raise DamagedState(os_reason(exc)) from None
    except ValueError as exc:  # (also bytes that are not UTF-8)
        raise DamagedState(f"not JSON: {exc}") from None
    enabled = data.get("enabled", []) if isinstance(data, dict) else None
    if not isinstance(enabled, list) or not all(isinstance(i, str) for i in enabled):
        raise DamagedState('no list of plugin ids under "enabled"')
    return set(enabled)
