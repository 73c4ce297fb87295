"""The "12/75" beside a prompt box: how many tokens the text encoder will read, counted off the UI thread."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QPlainTextEdit
from shiboken6 import isValid

from studio.core.prompt_tokens import CHUNK, count_tokens

PAUSE_MS = 150  # counted once typing pauses


class _CountRelay(QObject):
    """Carries a count from its thread to the window's. It lives as long as the application: a counter's own signal,
    emitted by a thread after the counter was deleted (its window closed meanwhile), crashed the process."""

    counted = Signal(object, int, int, int)  # a weak reference to the counter, which request, tokens, parts

    def __init__(self) -> None:
        super().__init__(QCoreApplication.instance())
        self.counted.connect(self._deliver)

    @Slot(object, int, int, int)
    def _deliver(self, counter: weakref.ref[TokenCounter], asked: int, tokens: int, parts: int) -> None:
        label = counter()
        if label is not None and isValid(label):
            label.show_count(asked, tokens, parts)


_relay: _CountRelay | None = None


def _count_relay() -> _CountRelay:
    global _relay
    if _relay is None or not isValid(_relay):  # made on the window's thread, with the first counter
        _relay = _CountRelay()
    return _relay


class TokenCounter(QLabel):
    def __init__(self, edit: QPlainTextEdit, encoded: Callable[[str], str] = str) -> None:
        """``encoded``: the part of the box's text the text encoder reads (the prompt's without its LoRA tags)."""
        super().__init__(f"0/{CHUNK}")
        self.setObjectName("hintLabel")
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setToolTip(f"Tokens the text encoder reads (emphasis brackets and weights are not counted). Past "
                        f"{CHUNK}, the prompt is read whole, in parts of {CHUNK}.")
        self._edit = edit
        self._encoded = encoded
        self._asked = 0
        self._relay = _count_relay()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAUSE_MS)
        self._timer.timeout.connect(self._count)
        edit.textChanged.connect(self._timer.start)

    def _count(self) -> None:
        self._asked += 1
        asked, text, relay, me = self._asked, self._encoded(self._edit.toPlainText()), self._relay, weakref.ref(self)
        # The first count reads CLIP's merges (about 30 ms): never on this thread.
        threading.Thread(target=lambda: relay.counted.emit(me, asked, *count_tokens(text)), name="token-count",
                         daemon=True).start()

    def show_count(self, asked: int, tokens: int, parts: int) -> None:
        if asked == self._asked:  # a later count is on its way otherwise
            self.setText(f"{tokens}/{parts * CHUNK}")
