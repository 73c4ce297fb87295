"""The "12/75" beside a prompt box: how many tokens the text encoder will read, counted off the UI thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from studio.core.prompt_tokens import CHUNK, count_tokens

PAUSE_MS = 150  # counted once typing pauses


class TokenCounter(QLabel):
    _counted = Signal(int, int, int)  # which request, tokens, parts

    def __init__(self, edit: QPlainTextEdit) -> None:
        super().__init__(f"0/{CHUNK}")
        self.setObjectName("hintLabel")
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setToolTip(f"Tokens the text encoder reads (emphasis brackets and weights are not counted). Past "
                        f"{CHUNK}, the prompt is read whole, in parts of {CHUNK}.")
        self._edit = edit
        self._asked = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAUSE_MS)
        self._timer.timeout.connect(self._count)
        edit.textChanged.connect(self._timer.start)
        self._counted.connect(self._show)

    def _count(self) -> None:
        self._asked += 1
        asked, text = self._asked, self._edit.toPlainText()
        # The first count reads CLIP's merges (about 30 ms): never on this thread.
        threading.Thread(target=lambda: self._counted.emit(asked, *count_tokens(text)), name="token-count",
                         daemon=True).start()

    def _show(self, asked: int, tokens: int, parts: int) -> None:
        if asked == self._asked:  # a later count is on its way otherwise
            self.setText(f"{tokens}/{parts * CHUNK}")
