"""The status bar: the latest message, standing notices, job progress (step i/N, speed, elapsed), device, model and
zoom."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStatusBar,
    QWidget,
)

from studio.core.events import JobProgress, StepRate, format_rate
from studio.core.requests import GenerationRequest, steps_explained
from studio.ui.status_notices import NoticesButton
from studio.ui.theme import plain_tooltip, repolish

ENGINE_STARTING = "Engine starting…"  # the device label until the engine reports its device
MESSAGE_SECONDS = 30.0  # how long a message that is not an error stays, unless another replaces it first
ROOMY_PROGRESS_TEXT = "Image 10/10 · Step 100/100 · 10.0 it/s · 100.0 s"  # the progress label's width at first


class _ElidedLabel(QLabel):
    """A one-line label that ends a message too long for it with "…" (the tooltip has it whole), instead of
    cutting it off mid-word; ``text()`` is the whole message."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._whole = text
        super().setText(text)

    def setText(self, text: str) -> None:  # noqa: N802
        self._whole = text
        self._elide()

    def text(self) -> str:
        return self._whole

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self._whole, Qt.TextElideMode.ElideRight, room) if room > 0 \
            else self._whole
        super().setText(shown)


class _MessageLine(QWidget):
    """The message, with the job's progress (text and bar) at its right end while a job runs.

    It places its children itself: the status bar's layout never changes when a job starts or ends (a change there
    re-lays out the whole window, ~30 ms), and between jobs the message has the whole line, not a line short of
    the hidden progress's room."""

    SPACING = 6

    def __init__(self, message: QLabel, progress_label: QLabel, progress: QProgressBar) -> None:
        super().__init__()
        self.message, self.progress_label, self.progress = message, progress_label, progress
        for child in (message, progress_label, progress):
            child.setParent(self)
        # Its width comes from the status bar's stretch, never from the message: see StudioStatusBar.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._progress_shown = False
        progress_label.hide()
        progress.hide()

    def set_progress_shown(self, shown: bool) -> None:
        self._progress_shown = shown
        self.progress_label.setVisible(shown)
        self.progress.setVisible(shown)
        self._place()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, max(_size(child).height() for child in (self.message, self.progress_label, self.progress)))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self.sizeHint()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._place()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # a child shown or resized (the progress text grew)
            self._place()
        return super().event(event)

    def _place(self) -> None:
        rect = self.contentsRect()
        right = rect.right() + 1
        if self._progress_shown:
            for child in (self.progress, self.progress_label):
                size = _size(child)
                right -= size.width()
                child.setGeometry(right, rect.top() + (rect.height() - size.height()) // 2, size.width(),
                                  size.height())
                right -= self.SPACING
        self.message.setGeometry(rect.left(), rect.top(), max(0, right - rect.left()), rect.height())


def _size(widget: QWidget) -> QSize:
    """The size a layout would give the widget: its size hint within its minimum and maximum (fixed sizes)."""
    return widget.sizeHint().expandedTo(widget.minimumSize()).boundedTo(widget.maximumSize())


class StudioStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_label = _ElidedLabel("Starting…")
        self.message_label.setObjectName("statusMessage")
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)  # messages quote file names and metadata
        # Its text must not set the window's minimum width: a long message would re-lay out the whole window.
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("progressLabel")
        self._progress_label_width = 0  # its fixed width once a job has shown text in it (see _show_progress)
        self.model_label = QLabel("No model loaded")
        self._model = ""  # the Stable Diffusion model loaded
        self._generator = ""  # the plugin generator whose job runs now, named in the model's place
        self.device_label = QLabel(ENGINE_STARTING)
        self.device_label.setToolTip("The device that runs the models")
        self.zoom_label = QLabel("100%")
        self.zoom_label.setToolTip("Canvas zoom")
        self.notices = NoticesButton()
        self.notices.changed.connect(self._notices_changed)
        self._shown_notice = ""  # the notice the message line shows, if it shows one
        # Shown only while a job runs, at the message line's end (see _MessageLine).
        self.message_line = _MessageLine(self.message_label, self.progress_label, self.progress)
        self.addWidget(self.message_line, 1)
        self.addPermanentWidget(self.notices)
        for label in (self.model_label, self.device_label, self.zoom_label):
            self.addPermanentWidget(_separator())
            self.addPermanentWidget(label)
        self._job_started: float | None = None
        self._last_progress: JobProgress | None = None
        self._request: GenerationRequest | None = None  # the running job's
        self._rate = StepRate()
        self._speed = ""  # "7.4 it/s" once two steps of the current picture have been seen
        self._ticker = QTimer(self)
        self._ticker.setInterval(200)  # elapsed time keeps moving even between steps (model load)
        self._ticker.timeout.connect(self._refresh_progress_text)
        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.timeout.connect(lambda: self.set_message(""))

    def set_message(self, text: str, error: bool = False) -> None:
        """Show ``text`` until another message replaces it; a message that is not an error also goes by itself after
        MESSAGE_SECONDS: "Scaling ... was cancelled; the picture is unchanged." stayed through later undos and
        edits it no longer described. An error stays until replaced, so it is never missed."""
        if error or not text:
            self._expiry.stop()
        else:
            self._expiry.start(round(MESSAGE_SECONDS * 1000))
        self.message_label.setText(text)
        self.message_label.setProperty("error", error)
        self.message_label.setToolTip(plain_tooltip(text))
        repolish(self.message_label)
        self._shown_notice = ""

    def withdraw_message(self, text: str) -> None:
        """Clear the line if it still says ``text``, which no longer holds (a note about what a field held)."""
        if self.message_label.text() == text:
            self.set_message("")

    def add_notice(self, text: str) -> None:
        """A problem that stays true after it is said (a settings file set aside, autosave off): shown now, and kept
        by the notices button, whatever messages replace it here, until the person dismisses it. A problem the line
        says already (a job's picture left unsaved) stays there: the notice waits in the button, counted."""
        self.notices.add(text)
        if self.message_label.property("error") and self.message_label.text() and not self._shown_notice:
            return
        self.set_message(text, error=True)
        self._shown_notice = text

    def _notices_changed(self) -> None:
        if self._shown_notice and self._shown_notice not in self.notices.notices():  # dismissed: it goes from here too
            self.set_message("")

    def set_device(self, text: str) -> None:
        self.device_label.setText(text)

    def set_model(self, text: str) -> None:
        """The Stable Diffusion model loaded; shown once no plugin generator's job runs (see show_generator)."""
        self._model = text
        if not self._generator:
            self.model_label.setText(text or "No model loaded")
            self.model_label.setToolTip("The Stable Diffusion model loaded")

    def show_generator(self, title: str) -> None:
        """A plugin generator's job runs: its title stands where the model is named (the model is not what makes
        the picture); "" when it has ended, and the model is named again."""
        self._generator = title
        if title:
            self.model_label.setText(title)
            self.model_label.setToolTip(f"{title}, a plugin generator, is making this picture; "
                                        f"{self._model or 'no Stable Diffusion model'} stays loaded")
        else:
            self.set_model(self._model)

    def set_zoom(self, factor: float) -> None:
        self.zoom_label.setText(f"{factor * 100:.0f}%")

    def job_started(self, request: GenerationRequest | None = None) -> None:
        """``request``: the job's, whose Steps and strength explain a step count other than its Steps."""
        self._job_started = time.monotonic()
        self._request = request
        self._last_progress = None
        self._speed = ""
        self.progress.setValue(0)
        self._ticker.start()
        self._refresh_progress_text()
        self.message_line.set_progress_shown(True)

    def job_progress(self, event: JobProgress) -> None:
        self._last_progress = event
        rate = self._rate.update(event)
        if rate is not None:
            self._speed = f"{format_rate(rate)} · "
        self.progress.setValue(round(event.fraction * 1000))
        self._refresh_progress_text()

    def job_ended(self) -> None:
        self._ticker.stop()
        self._job_started = None
        self.message_line.set_progress_shown(False)
        self.progress_label.clear()

    def _refresh_progress_text(self) -> None:
        if self._job_started is None:
            return
        elapsed = time.monotonic() - self._job_started
        p = self._last_progress
        if p is None:
            self._show_progress(f"Preparing… {elapsed:.1f} s")
            return
        batch = f"Image {p.image_index + 1}/{p.image_count} · " if p.image_count > 1 else ""
        why = steps_explained(self._request, p.total) if self._request is not None else ""
        why = f" ({why})" if why else ""  # "Step 7/375 (500 steps × strength 0.75)": not the Steps box's 500
        self._show_progress(f"{batch}Step {p.step}/{p.total}{why} · {self._speed}{elapsed:.1f} s")

    def _show_progress(self, text: str) -> None:
        """Set the progress text in a label of fixed size, grown only when a text would not fit.

        A label of fixed size repaints only itself when its text changes; a resizable one re-lays out the status
        bar, then the window's layout, and repaints the whole bar, at every step and every 200 ms tick (the
        tiny model's 2 ms probe showed p99 gaps 1 ms longer for it)."""
        label = self.progress_label
        margins = label.contentsMargins()  # the style sheet's padding
        metrics = label.fontMetrics()
        needed = metrics.horizontalAdvance(text) + margins.left() + margins.right()
        if needed > self._progress_label_width:
            room = metrics.horizontalAdvance(ROOMY_PROGRESS_TEXT) + margins.left() + margins.right()
            self._progress_label_width = max(needed, room)  # room for a long line at once: it rarely grows again
            label.setFixedSize(self._progress_label_width, metrics.height() + margins.top() + margins.bottom())
        label.setText(text)


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setObjectName("statusSeparator")
    line.setFixedHeight(14)
    return line
