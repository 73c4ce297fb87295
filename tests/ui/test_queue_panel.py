"""The queue list in a long session: the running job stays in view, and ended jobs' rows do not pile up."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QAbstractSlider, QApplication, QListWidgetItem

from studio.core.requests import GenerationRequest
from studio.ui.queue_panel import QueuePanel


def _panel(qtbot) -> QueuePanel:  # noqa: ANN001
    panel = QueuePanel()
    qtbot.addWidget(panel)
    panel.resize(320, 260)  # a few rows high, as a docked Queue panel beside the Gallery
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _queue(panel: QueuePanel, ids: range) -> None:
    for job_id in ids:
        panel.add_job(job_id, GenerationRequest(model="tiny-sd", prompt=f"p{job_id}"))


def _row(panel: QueuePanel, job_id: int) -> QListWidgetItem:
    (item,) = panel.list.findItems(f"· #{job_id}  ", Qt.MatchFlag.MatchContains)
    return item


def _shown(panel: QueuePanel, job_id: int) -> bool:
    return panel.list.viewport().rect().contains(panel.list.visualItemRect(_row(panel, job_id)))


def test_the_running_job_is_scrolled_into_view_as_each_starts(qtbot):  # noqa: ANN001
    """With eleven jobs queued, the list stayed on the oldest rows: #11 ran below the fold."""
    panel = _panel(qtbot)
    _queue(panel, range(1, 12))
    for job_id in range(1, 12):
        panel.set_running(job_id)
        assert _shown(panel, job_id), job_id
        panel.set_finished(job_id, "Done in 1 s")
    assert panel.list.verticalScrollBar().value() > 0


def test_a_list_scrolled_away_by_hand_stays_until_scrolled_back_or_new_work_comes(qtbot):  # noqa: ANN001
    panel = _panel(qtbot)
    bar = panel.list.verticalScrollBar()
    _queue(panel, range(1, 16))
    for job_id in range(1, 9):
        panel.set_running(job_id)
        panel.set_finished(job_id, "Done in 1 s")
    panel.set_running(9)
    viewport = panel.list.viewport()  # the wheel, up to the first rows again (a page at most per turn)
    for _ in range(20):
        if bar.value() == 0:
            break
        QApplication.sendEvent(viewport, QWheelEvent(
            QPointF(10, 10), QPointF(viewport.mapToGlobal(QPoint(10, 10))), QPoint(0, 0), QPoint(0, 360),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    assert bar.value() == 0 and not panel.following
    panel.set_finished(9, "Done in 1 s")
    panel.set_running(10)
    assert bar.value() == 0 and not _shown(panel, 10)  # left where the person put it
    panel.set_finished(10, "Done in 1 s")
    bar.triggerAction(QAbstractSlider.SliderAction.SliderToMaximum)  # back to the end: followed again
    assert panel.following
    panel.set_running(11)
    assert _shown(panel, 11)
    for job_id in range(11, 16):
        panel.set_running(job_id)
        panel.set_finished(job_id, "Done in 1 s")
    bar.triggerAction(QAbstractSlider.SliderAction.SliderToMinimum)
    assert not panel.following
    _queue(panel, range(16, 17))  # new work after the queue ran dry
    panel.set_running(16)
    assert _shown(panel, 16)


def test_only_the_last_finished_and_failed_rows_are_kept(qtbot):  # noqa: ANN001
    """After forty generations all forty rows were still listed, the running one at the bottom of a long list."""
    panel = _panel(qtbot)
    _queue(panel, range(1, 61))
    for job_id in range(1, 61):
        panel.set_running(job_id)
        if job_id % 2:
            panel.set_failed(job_id, f"Job {job_id} ran out of memory.")
        else:
            panel.set_finished(job_id, "Done in 1 s")
    assert panel.job_ids("finished") == list(range(22, 61, 2))  # the last 20 of each
    assert panel.job_ids("failed") == list(range(21, 61, 2))
    assert panel.list.count() == 40
    assert "Job 59 ran out of memory." in _row(panel, 59).toolTip()  # a failure's message stays with its row


def _icon_colour(item: QListWidgetItem) -> QColor:
    """The average colour of the row icon's strokes."""
    image = item.icon().pixmap(24, 24).toImage()
    strokes = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())
               if image.pixelColor(x, y).alpha() > 200]
    return QColor(*(sum(getattr(c, part)() for c in strokes) // len(strokes) for part in ("red", "green", "blue")))


def test_a_failed_row_is_marked_red_a_warning_amber_and_a_cancelled_one_neutral(qtbot):  # noqa: ANN001
    """Failed and cancelled rows looked alike (both light grey signs), and a failure milder than a warning."""
    panel = _panel(qtbot)
    _queue(panel, range(1, 5))
    panel.set_failed(1, "The model could not be loaded.")
    panel.set_finished(2, "Done", warning="The VAE was missing; the model's own was used.")
    panel.set_cancelled(3)
    panel.set_finished(4, "Done")
    failed, warned, cancelled = (_icon_colour(_row(panel, job_id)) for job_id in (1, 2, 3))
    assert failed.red() > failed.green() + 60 and failed.red() > failed.blue() + 60  # red
    assert warned.red() > warned.blue() + 60 and warned.green() > warned.blue() + 40  # amber
    assert max(cancelled.red(), cancelled.green(), cancelled.blue()) - min(
        cancelled.red(), cancelled.green(), cancelled.blue()) < 30  # grey
    # A failure's text stays as bright as a waiting job's; a cancelled job's is dimmed like a finished one's.
    assert _row(panel, 1).foreground().color().lightness() > _row(panel, 3).foreground().color().lightness()
    assert _row(panel, 3).foreground().color() == _row(panel, 4).foreground().color()

