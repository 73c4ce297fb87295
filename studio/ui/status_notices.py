"""Standing notices: problems Studio found that stay true after they are said (a settings file set aside, autosave
off, a read-only history, a damaged list of enabled plugins). The status line shows each as it comes, but the next
message replaces it there; the notices button in the status bar keeps them all, counted, until the person dismisses
them, and its popup shows each in full."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.theme import WARNING, icon, plain_tooltip

POPUP_WIDTH = 460  # wide enough for a folder path on one line, narrow enough to sit over the status bar's right end


def notices_count_text(count: int) -> str:
    return f"{count} notice{'s' * (count != 1)}"


class NoticesButton(QToolButton):
    """Hidden while there is no notice; else a warning sign and how many there are. Its tooltip lists them all, and
    a click opens a popup where each can be read whole, selected (to copy a path) and dismissed."""

    changed = Signal()  # a notice was added or dismissed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticesButton")
        self.setIcon(icon("alert", WARNING))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._notices: list[str] = []
        self.popup: NoticesPopup | None = None
        self.clicked.connect(self.show_popup)
        self.hide()

    def notices(self) -> list[str]:
        """The standing notices, oldest first."""
        return list(self._notices)

    def add(self, text: str) -> None:
        """Keep a notice (one already kept is not counted twice)."""
        if text and text not in self._notices:
            self._notices.append(text)
            self._refresh()

    def dismiss(self, text: str) -> None:
        if text in self._notices:
            self._notices.remove(text)
            self._refresh()

    def dismiss_all(self) -> None:
        self._notices.clear()
        self._refresh()

    def show_popup(self) -> NoticesPopup | None:
        """The popup over the button, right edges aligned, kept on the screen."""
        if not self._notices:
            return None
        if self.popup is None:
            self.popup = NoticesPopup(self)
            self.popup.dismissed.connect(self.dismiss)
            self.popup.dismissed_all.connect(self.dismiss_all)
        self.popup.follow(self._notices)
        self.popup.place(self.mapToGlobal(QPoint(self.width(), 0)))
        self.popup.show()
        return self.popup

    def _refresh(self) -> None:
        count = len(self._notices)
        self.setText(notices_count_text(count))
        self.setAccessibleName(notices_count_text(count))
        self.setToolTip(plain_tooltip("\n\n".join([*self._notices, "Click to read or dismiss them."])))
        self.setVisible(count > 0)
        if self.popup is not None and self.popup.isVisible():
            if count:
                self.popup.follow(self._notices)
            else:
                self.popup.close()
        self.changed.emit()


class NoticesPopup(QFrame):
    """Each notice in full, with its own dismiss button, and "Dismiss all"; closes on a click elsewhere or Esc."""

    dismissed = Signal(str)
    dismissed_all = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("noticesPopup")
        self.setFixedWidth(POPUP_WIDTH)
        self._anchor = QPoint()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 8, 10)
        layout.setSpacing(8)
        header = QHBoxLayout()
        self.title = QLabel()
        self.title.setObjectName("noticesTitle")
        self.dismiss_all_button = QPushButton("Dismiss all")
        self.dismiss_all_button.clicked.connect(self.dismissed_all)
        header.addWidget(self.title, 1)
        header.addWidget(self.dismiss_all_button)
        layout.addLayout(header)
        self.rows = QVBoxLayout()
        self.rows.setSpacing(6)
        layout.addLayout(self.rows)

    def follow(self, notices: list[str]) -> None:
        """Show these notices (after one was dismissed or added while open)."""
        while self.rows.count():
            row = self.rows.takeAt(0).widget()
            row.setParent(None)  # gone from findChildren now, not at the next event-loop turn
            row.deleteLater()
        self.title.setText(notices_count_text(len(notices)))
        for text in notices:
            self.rows.addWidget(self._row(text))
        self.layout().activate()
        if not self._anchor.isNull():
            self.place(self._anchor)

    def notice_labels(self) -> list[QLabel]:
        return self.findChildren(QLabel, "noticeText")

    def _row(self, text: str) -> QFrame:
        row = QFrame()
        row.setObjectName("noticeRow")
        line = QHBoxLayout(row)
        line.setContentsMargins(8, 6, 4, 6)
        line.setSpacing(6)
        mark = QLabel()
        mark.setPixmap(icon("alert", WARNING).pixmap(16, 16))
        mark.setAlignment(Qt.AlignmentFlag.AlignTop)
        label = QLabel(text)
        label.setObjectName("noticeText")
        label.setTextFormat(Qt.TextFormat.PlainText)  # notices quote file names
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # a path can be copied
        close = QToolButton()
        close.setIcon(icon("close"))
        close.setToolTip("Dismiss this notice")
        close.setAutoRaise(True)
        close.clicked.connect(lambda: self.dismissed.emit(text))
        line.addWidget(mark, 0, Qt.AlignmentFlag.AlignTop)
        line.addWidget(label, 1)
        line.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        return row

    def place(self, bottom_right: QPoint) -> None:
        """Above ``bottom_right`` (the button's top right corner, in screen coordinates), inside its screen."""
        self._anchor = bottom_right
        self.resize(POPUP_WIDTH, self.heightForWidth(POPUP_WIDTH))  # the wrapped notices' height at this width
        screen = QGuiApplication.screenAt(bottom_right) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QRect(0, 0, 10_000, 10_000)
        x = max(area.left(), min(bottom_right.x() - self.width(), area.right() - self.width()))
        self.move(x, max(area.top(), bottom_right.y() - self.height() - 4))
