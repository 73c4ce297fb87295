"""The prompt box: Up/Down walk through earlier prompts, Ctrl+Up/Down weigh the selected words (or the word at
the cursor) as ``(words:1.1)``, completion of earlier prompts as you type, and picture files dropped on it hand
over their parameters instead of inserting their path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QStringListModel, Qt, Signal
from PySide6.QtGui import QFocusEvent, QGuiApplication, QKeyEvent, QKeySequence, QTextCursor
from PySide6.QtWidgets import QCompleter, QPlainTextEdit, QWidget

from studio.core.prompt_syntax import change_emphasis
from studio.services.history_queries import RECENT_PROMPTS

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MIN_COMPLETION_CHARS = 3
EMPHASIS_STEP = 0.1  # what Ctrl+Up / Ctrl+Down add to the words' weight, as in A1111
PICTURE_ON_CLIPBOARD = "The clipboard holds a picture: click the canvas and press Ctrl+V to paste it."


def picture_paths(mime: QMimeData) -> list[Path]:
    return [Path(u.toLocalFile()) for u in mime.urls()
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in PICTURE_SUFFIXES]


class PromptEdit(QPlainTextEdit):
    picture_dropped = Signal(object)  # Path of a picture whose parameters should be loaded
    focused = Signal()  # the person went into this box (words from a menu go into the last one)
    hint = Signal(str)  # a sentence for the status line

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._history: list[str] = []  # newest first
        self._position = -1  # -1: the person's own draft; 0..: an earlier prompt
        self._draft = ""
        self._completions = QStringListModel(self)
        self.completer = QCompleter(self._completions, self)
        self.completer.setWidget(self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchStartsWith)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.setMaxVisibleItems(8)
        self.completer.activated.connect(self._accept_completion)
        self.textChanged.connect(self._update_completion)
        self._completing = False

    # -- earlier prompts -------------------------------------------------------------------------
    def set_history(self, prompts: list[str]) -> None:
        """Earlier prompts, newest first (distinct)."""
        self._history = [p for p in prompts if p.strip()]
        self._completions.setStringList(self._history)
        self._position = -1

    def remember(self, prompt: str) -> None:
        """A prompt was just run: it becomes the newest entry (the oldest goes past RECENT_PROMPTS, as at start)."""
        if prompt.strip():
            self.set_history([prompt, *[p for p in self._history if p != prompt]][:RECENT_PROMPTS])

    def recall(self, step: int) -> bool:
        """Move through earlier prompts: +1 older, -1 newer. False at either end."""
        target = self._position + step
        if target < -1 or target >= len(self._history):
            return False
        if self._position == -1:
            self._draft = self.toPlainText()
        self._position = target
        self._set_text(self._draft if target == -1 else self._history[target])
        return True

    def _set_text(self, text: str) -> None:
        self._completing = True  # recalled text is not typing: no completion popup
        position = self._position
        self.replace_text(text)
        self._position = position
        self.moveCursor(QTextCursor.MoveOperation.End)
        self._completing = False

    def replace_text(self, text: str) -> None:
        """All the text replaced by ``text`` as one step Ctrl+Z takes back (a style, a recalled prompt, loaded
        parameters): setPlainText would clear the undo history, and with it the person's draft."""
        if text == self.toPlainText():
            return
        if not self.document().isEmpty():
            cursor = self.textCursor()
            cursor.beginEditBlock()
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.insertText(text)
            cursor.endEditBlock()
            self.setTextCursor(cursor)
        else:  # nothing to take back
            self.setPlainText(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        popup = self.completer.popup()
        if popup.isVisible() and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab,
                                                  Qt.Key.Key_Escape):
            if event.key() == Qt.Key.Key_Escape:
                popup.hide()
                return
            index = popup.currentIndex()
            if index.isValid() and event.modifiers() == Qt.KeyboardModifier.NoModifier:
                self._accept_completion(index.data())
                popup.hide()
                return
            popup.hide()
        if event.modifiers() == Qt.KeyboardModifier.ControlModifier and event.key() in (Qt.Key.Key_Up,
                                                                                        Qt.Key.Key_Down):
            self.weigh_selection(EMPHASIS_STEP if event.key() == Qt.Key.Key_Up else -EMPHASIS_STEP)
            return
        if event.matches(QKeySequence.StandardKey.Paste) and _only_a_picture(QGuiApplication.clipboard().mimeData()):
            self.hint.emit(PICTURE_ON_CLIPBOARD)  # a text box takes no picture: said, not silently nothing
            return
        plain = event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
        cursor = self.textCursor()
        if plain and event.key() == Qt.Key.Key_Up and not popup.isVisible():
            first_line = cursor.blockNumber() == 0 and cursor.block().layout().lineForTextPosition(
                cursor.positionInBlock()).lineNumber() == 0
            if first_line and self.recall(+1):
                return
        if plain and event.key() == Qt.Key.Key_Down and not popup.isVisible():
            last_block = cursor.blockNumber() == self.document().blockCount() - 1
            layout = cursor.block().layout()
            last_line = layout.lineForTextPosition(cursor.positionInBlock()).lineNumber() == layout.lineCount() - 1
            if last_block and last_line and self.recall(-1):
                return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        super().focusInEvent(event)
        self.focused.emit()

    def insert_word(self, word: str) -> None:
        """``word`` at the cursor, set off from the words before it by a comma."""
        cursor = self.textCursor()
        text = self.toPlainText()
        before = text[:_from_qt(text, cursor.selectionStart())].rstrip()
        cursor.insertText(f"{', ' if before and not before.endswith(',') else ' ' if before else ''}{word}")
        self.setTextCursor(cursor)

    def weigh_selection(self, step: float) -> None:
        """The selected words' (or the cursor's word's) emphasis up or down by ``step``, as one undo step."""
        cursor = self.textCursor()
        old = self.toPlainText()
        text, start, end = change_emphasis(old, _from_qt(old, cursor.selectionStart()),
                                           _from_qt(old, cursor.selectionEnd()), step)
        if text == old:
            return
        self._completing = True  # an edit of the weights is not typing: no completion popup
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        cursor.setPosition(_to_qt(text, start))
        cursor.setPosition(_to_qt(text, end), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        self._completing = False

    # -- completion ------------------------------------------------------------------------------
    def _update_completion(self) -> None:
        if self._completing:
            return
        self._position = -1
        text = self.toPlainText()
        popup = self.completer.popup()
        if len(text.strip()) < MIN_COMPLETION_CHARS or not self.hasFocus():
            popup.hide()
            return
        self.completer.setCompletionPrefix(text)
        if self.completer.completionCount() == 0 or (
                self.completer.completionCount() == 1 and self.completer.currentCompletion() == text):
            popup.hide()
            return
        rect = self.cursorRect()
        rect.setWidth(max(self.width() - 8, 200))
        self.completer.complete(rect)

    def _accept_completion(self, text: str) -> None:
        self._set_text(text)

    # -- drops -----------------------------------------------------------------------------------
    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802
        if _only_files(source):  # another file than a picture: its "file:///…" is no part of a prompt
            return bool(picture_paths(source))
        return super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802
        paths = picture_paths(source)
        if paths:
            self.picture_dropped.emit(paths[0])
            return
        if not _only_files(source):
            super().insertFromMimeData(source)


def _only_files(mime: QMimeData) -> bool:
    """Files dragged from a file manager (which also offer their URLs as text), not text someone dragged."""
    return mime.hasUrls() and all(u.isLocalFile() for u in mime.urls())


def _only_a_picture(mime: QMimeData | None) -> bool:
    """Image data (a copied picture), with no text or file to paste into a prompt."""
    return mime is not None and mime.hasImage() and not mime.hasText() and not mime.hasUrls()


# Qt counts places in UTF-16 units (an emoji is two), Python in characters.
def _from_qt(text: str, position: int) -> int:
    return len(text.encode("utf-16-le")[:2 * position].decode("utf-16-le", errors="ignore"))


def _to_qt(text: str, position: int) -> int:
    return len(text[:position].encode("utf-16-le")) // 2
