"""Keys that belong to the field that has focus, not to the window's shortcuts.

The tools have one-letter shortcuts (H, B, E, R, L, F, M) and Esc cancels the running job, window-wide. In a
drop-down or a list a letter jumps to the item it starts ("E" to Euler), so there it goes to the field, not
to the tool (M used to hide the mask, and the next job quietly ignored it); the undo history's list is the
exception, where the letters stay the tools'. Esc cancels the running job from a field too, as the Cancel
button's "Stop the running job (Esc)" says: a field has no use of its own for it. Where Esc does mean something
(an open completer or drop-down list, a cell being edited, a dialog) it keeps that meaning; with no job running,
Esc in a field leaves it for the canvas.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

_LETTER_FIELDS = (QComboBox, QAbstractItemView)
_ESC_FIELDS = (QComboBox, QAbstractItemView, QLineEdit, QPlainTextEdit, QTextEdit, QAbstractSpinBox)
_PLAIN = (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.KeypadModifier)


class FocusedFieldKeys(QObject):
    """An event filter on the main window; ``leave_to`` gets focus when Esc leaves a field.

    Key events a field does not take go up to its window, so the window is the one place to watch: a filter on
    the whole application would call Python for every event of every widget, and each call waits for the
    interpreter while the engine thread runs."""

    def __init__(self, window: QWidget, leave_to: QWidget) -> None:
        super().__init__(window)
        self._leave_to = leave_to

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        field = QApplication.focusWidget()
        if field is None or field is self._leave_to or field.window() is not watched:
            return False  # a drop-down's open list, a completer: their own keys
        assert isinstance(event, QKeyEvent)
        escape = event.key() == Qt.Key.Key_Escape and event.modifiers() == Qt.KeyboardModifier.NoModifier
        if kind == QEvent.Type.ShortcutOverride:
            letter = bool(event.text()) and event.text().isprintable() and event.modifiers() in _PLAIN
            if escape and _clears_on_escape(field):
                event.accept()  # a search box's Esc clears its text first (a running job is not cancelled)
                return False
            if escape and isinstance(field, _ESC_FIELDS) and _escape_runs_an_action(watched):
                return False  # the window's Esc (Cancel Current Job, while a job runs) fires
            if (letter and _takes_letters(field)) or (escape and isinstance(field, _ESC_FIELDS)):
                event.accept()  # the field gets the key as a key press, and no shortcut fires
            return False
        if escape and _clears_on_escape(field):
            assert isinstance(field, QLineEdit)
            field.clear()
            return True
        if escape and isinstance(field, _ESC_FIELDS):
            self._leave_to.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        return False


def _clears_on_escape(field: QWidget) -> bool:
    """A search box (a line with a clear button) that holds text: Esc there clears it, as in most programs; only an
    empty one's Esc cancels the job or leaves the field."""
    return isinstance(field, QLineEdit) and field.isClearButtonEnabled() and bool(field.text())


def _escape_runs_an_action(window: QObject) -> bool:
    """Whether Esc is the shortcut of an enabled action of the window, and no popup (a completer's list, an open
    drop-down) would take it first."""
    if QApplication.activePopupWidget() is not None:
        return False
    escape = QKeySequence(Qt.Key.Key_Escape)
    return any(a.isEnabled() and escape in a.shortcuts() for a in window.findChildren(QAction))


def _takes_letters(field: QWidget) -> bool:
    """A drop-down or a list searches its items by letter, unless it says its letters are the window's shortcuts
    (the undo history: a search there moved the current row, and so undid steps)."""
    return isinstance(field, _LETTER_FIELDS) and not field.property("lettersAreShortcuts")
