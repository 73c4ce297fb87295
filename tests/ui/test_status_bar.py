"""The status bar while a job runs: step, speed (once two steps of a picture are in) and elapsed time."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QWidget

from studio.core.events import JobProgress
from studio.ui.status_bar import StudioStatusBar


class LayoutRequests(QObject):
    """Counts the layout requests ``widget`` gets once installed as its event filter (each re-lays it out)."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.widget, self.count = widget, 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.widget and event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def test_the_progress_shows_the_step_speed_of_the_current_picture(qtbot) -> None:  # noqa: ANN001
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.job_started()
    assert bar.progress_label.text().startswith("Preparing…")
    bar.job_progress(JobProgress(1, 1, 20, 0, 2, 4.0))  # after a 4 s model load
    assert re.fullmatch(r"Image 1/2 · Step 1/20 · \d+\.\d s", bar.progress_label.text())
    bar.job_progress(JobProgress(1, 11, 20, 0, 2, 5.25))
    assert re.fullmatch(r"Image 1/2 · Step 11/20 · 8\.0 it/s · \d+\.\d s", bar.progress_label.text())
    bar.job_progress(JobProgress(1, 1, 20, 1, 2, 7.0))  # the next picture: its speed is measured anew
    assert "it/s" in bar.progress_label.text()  # the last figure stays until the new one is known
    bar.job_progress(JobProgress(1, 3, 20, 1, 2, 11.0))
    assert re.fullmatch(r"Image 2/2 · Step 3/20 · 2\.00 s/it · \d+\.\d s", bar.progress_label.text())
    bar.job_ended()
    assert bar.progress_label.text() == ""
    bar.job_started()  # a new job starts without the last one's speed
    bar.job_progress(JobProgress(2, 1, 4, 0, 1, 0.5))
    assert "it/s" not in bar.progress_label.text() and "s/it" not in bar.progress_label.text()


def test_the_progress_says_why_it_counts_fewer_steps_than_the_steps_box(qtbot, window) -> None:  # noqa: ANN001
    """Steps 500 at strength 0.75 runs 375 steps: "Step 7/375" alone looked like a wrong count."""
    from PIL import Image

    from studio.core.events import JobStarted
    from studio.core.requests import GenerationRequest

    request = GenerationRequest(model="tiny-sd", prompt="p", steps=500, strength=0.75,
                                init_image=Image.new("RGB", (64, 64)))
    window.jobs.requests[9] = request
    window.handle_event(JobStarted(9))
    window.handle_event(JobProgress(9, 7, 375, 0, 1, 1.0))
    assert re.fullmatch(r"Step 7/375 \(500 steps × strength 0\.75\) · \d+\.\d s",
                        window.status.progress_label.text())


def test_progress_text_changes_repaint_only_its_label_and_always_fit(qtbot, window) -> None:  # noqa: ANN001
    """A resizable label re-lays out the status bar and then the window at every step; the progress label keeps a
    fixed size, grown only when a text would not fit (long CPU jobs: seconds per step, thousands of seconds)."""
    from PySide6.QtWidgets import QApplication

    bar, label = window.status, window.status.progress_label

    def fits() -> bool:
        margins = label.contentsMargins()
        return label.fontMetrics().horizontalAdvance(label.text()) + margins.left() + margins.right() <= label.width()

    bar.job_started()
    bar.job_progress(JobProgress(1, 1, 20, 0, 2, 4.0))
    QApplication.processEvents()  # the first text fixes the label's size: one layout
    requests = LayoutRequests(bar)
    bar.installEventFilter(requests)
    for step in range(2, 21):
        bar.job_progress(JobProgress(1, step, 20, step // 11, 2, 4.0 + step * 0.1))
        QApplication.processEvents()
        assert fits(), label.text()
    assert requests.count == 0
    width = label.width()
    bar.job_progress(JobProgress(1, 150, 150, 9, 10, 12345.6))  # a long CPU batch: it grows, once
    bar._job_started -= 12345
    bar._refresh_progress_text()
    QApplication.processEvents()
    assert label.width() > width and fits(), label.text()
    bar.removeEventFilter(requests)
    bar.job_ended()


def test_a_message_too_long_for_the_bar_ends_with_an_ellipsis_and_is_whole_in_its_tooltip(qtbot, window) -> None:  # noqa: ANN001
    sentence = "Neural style transfer needs the VGG-19 weights; " * 6 + "import them with Filters → Style Weights."
    window.status.set_message(sentence, error=True)
    label = window.status.message_label
    qtbot.waitUntil(lambda: QLabel.text(label) != sentence, timeout=2000)
    shown = QLabel.text(label)  # what is drawn
    assert shown.endswith("…") and sentence.startswith(shown[:-1])
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.text() == sentence and sentence in label.toolTip()  # wrapped rich text, whole
    window.status.set_message("Saved the picture.")  # one that fits is shown whole
    assert QLabel.text(label) == "Saved the picture."


def test_between_jobs_a_message_has_the_room_of_the_hidden_progress(qtbot, window) -> None:  # noqa: ANN001
    """The progress (text and bar, ~500 px once a job has shown its text) is hidden between jobs; a message then
    uses that room, and shares the line with it again while a job runs; neither change re-lays out the bar."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    bar, label = window.status, window.status.message_label

    bar.job_started()
    bar.job_progress(JobProgress(1, 3, 20, 0, 2, 4.0))  # the progress text takes its room
    QApplication.processEvents()
    requests = LayoutRequests(bar)
    bar.installEventFilter(requests)
    bar.job_ended()
    QApplication.processEvents()
    reserved = bar.progress.width() + bar.progress_label.width()
    assert reserved > 300
    # The line up to the model's name, less its separator and margins.
    room = bar.model_label.mapTo(bar, QPoint()).x() - label.mapTo(bar, QPoint()).x() - 100
    sentence = "Saved"
    while label.fontMetrics().horizontalAdvance(sentence + " picture") < room - reserved + 150:
        sentence += " picture"
    sentence += "."
    bar.set_message(sentence)
    QApplication.processEvents()
    assert QLabel.text(label) == sentence, "a message that fits the line is shown whole"
    bar.job_started()  # it ends with "…" beside the progress, never under it
    QApplication.processEvents()
    assert label.geometry().right() < bar.progress_label.geometry().left() < bar.progress.geometry().left()
    assert bar.progress.isVisible() and bar.progress.mapTo(bar, QPoint()).x() < bar.model_label.mapTo(bar, QPoint()).x()
    assert QLabel.text(label).endswith("…") and label.text() == sentence
    bar.job_ended()
    QApplication.processEvents()
    assert QLabel.text(label) == sentence
    assert requests.count == 0
    bar.removeEventFilter(requests)


def test_a_message_goes_after_a_while_and_an_error_stays_until_replaced(qtbot, monkeypatch) -> None:  # noqa: ANN001
    """"Scaling ... was cancelled; the picture is unchanged." stayed through later undos and edits."""
    from PySide6.QtCore import QTimer

    from studio.ui import status_bar

    monkeypatch.setattr(status_bar, "MESSAGE_SECONDS", 0.05)
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.set_message("Scaled to 126×194.")
    qtbot.waitUntil(lambda: bar.message_label.text() == "", timeout=2000)
    bar.set_message("Saved the preset 'fast'.")
    bar.set_message("The picture could not be scaled (out of memory); it is unchanged.", error=True)
    later = QTimer()
    later.setSingleShot(True)
    with qtbot.waitSignal(later.timeout, timeout=2000):
        later.start(200)  # four times a message's time
    assert bar.message_label.text().startswith("The picture could not be scaled")


def test_undo_redo_and_an_extend_replace_the_message_of_an_earlier_action(qtbot, window) -> None:  # noqa: ANN001
    from PIL import Image

    doc = window.document
    doc.set_image(Image.new("RGB", (64, 64)), "Open")
    window.actions_.scale_image(96, 96)
    qtbot.waitUntil(lambda: doc.size == (96, 96), timeout=60_000)
    window.status.set_message("Scaling to 10641×16384 was cancelled; the picture is unchanged.")
    window.actions_.undo.trigger()
    assert window.status.message_label.text() == "Undid Scale to 96×96."
    window.actions_.redo.trigger()
    assert window.status.message_label.text() == "Redid Scale to 96×96."
    window.actions_.extend_canvas(0, 0, 8, 0, fill=False)
    qtbot.waitUntil(lambda: doc.size == (104, 96), timeout=60_000)
    qtbot.waitUntil(lambda: window.status.message_label.text() == "Extended the canvas to 104×96.", timeout=5000)
