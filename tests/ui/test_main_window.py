"""The main window end to end on the tiny model: generate, preview, queue, cancel, responsiveness."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QWheelEvent

from studio.core.images import read_recipe

WAIT_MS = 60_000


def _type_prompt(qtbot, window, text: str) -> None:  # noqa: ANN001
    window.prompt_panel.prompt_edit.clear()
    qtbot.keyClicks(window.prompt_panel.prompt_edit, text)


def _wait_engine_idle(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.queue_panel.job_ids("running")
                    and not window.queue_panel.job_ids("waiting"), timeout=WAIT_MS)


def test_generate_puts_the_result_on_the_canvas_and_saves_it(qtbot, window, settings):  # noqa: ANN001
    _type_prompt(qtbot, window, "a watercolor fox in a misty forest")
    window.prompt_panel.negative_edit.setPlainText("blurry")
    window.prompt_panel.seed_edit.setText("1234")
    previews: list[object] = []
    window.canvas.show_preview = _spy(window.canvas.show_preview, previews)
    qtbot.mouseClick(window.prompt_panel.generate_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    image = window.canvas.image()
    assert image is not None and image.size == (64, 64)
    assert previews, "no live preview reached the canvas"
    assert not window.canvas.has_preview()
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=5000)
    saved = sorted(settings.outputs_dir.rglob("*.png"))
    assert len(saved) == 1
    recipe = read_recipe(saved[0])
    assert (recipe.prompt, recipe.negative_prompt, recipe.seed) == (
        "a watercolor fox in a misty forest", "blurry", 1234)
    assert window.status.device_label.text().startswith("CPU")
    assert window.status.model_label.text() == "tiny-sd"


def test_screenshot_after_a_batch(qtbot, window, artifacts_dir):  # noqa: ANN001
    """Saves artifacts/main-window.png (the README's screenshot) after a two-image job."""
    _type_prompt(qtbot, window, "a lighthouse on a cliff at dusk, oil painting, dramatic clouds")
    window.prompt_panel.negative_edit.setPlainText("blurry, low quality")
    window.prompt_panel.set_size(256, 256)
    window.prompt_panel.steps_spin.setValue(12)
    window.prompt_panel.batch_spin.setValue(2)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 2, timeout=5000)
    model = window.gallery.model
    qtbot.waitUntil(lambda: all(model.thumbnail(model.index(r)) is not None for r in range(2)), timeout=5000)
    assert window.canvas.image().size == (256, 256)
    window.grab().save(str(artifacts_dir / "main-window.png"))
    assert (artifacts_dir / "main-window.png").stat().st_size > 10_000


def _spy(func, calls: list):  # noqa: ANN001, ANN202
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args)
        return func(*args, **kwargs)
    return wrapper


def test_ctrl_enter_in_the_prompt_box_generates(qtbot, window):  # noqa: ANN001
    _type_prompt(qtbot, window, "a lighthouse")
    window.prompt_panel.prompt_edit.setFocus()
    qtbot.keyClick(window.prompt_panel.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids()) == 1, timeout=5000)
    assert "\n" not in window.prompt_panel.prompt_edit.toPlainText()
    _wait_engine_idle(qtbot, window)


def test_cancel_stops_a_slow_job_within_a_step(qtbot, window):  # noqa: ANN001
    _type_prompt(qtbot, window, "a slow job")
    window.prompt_panel.steps_spin.setValue(600)
    qtbot.mouseClick(window.prompt_panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.status._last_progress is not None, timeout=WAIT_MS)
    assert window.queue_panel.cancel_button.isEnabled()
    clicked = time.monotonic()
    qtbot.mouseClick(window.queue_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("cancelled")), timeout=10_000)
    assert time.monotonic() - clicked < 2.0
    assert window.canvas.image() is None  # nothing half-made lands on the canvas
    assert window.status._last_progress is None or window.status._last_progress.step < 600


def test_queue_shows_waiting_jobs_and_removes_them(qtbot, window):  # noqa: ANN001
    _type_prompt(qtbot, window, "first, slow")
    window.prompt_panel.steps_spin.setValue(600)
    window.generate()
    window.prompt_panel.steps_spin.setValue(4)
    _type_prompt(qtbot, window, "second")
    window.generate()
    _type_prompt(qtbot, window, "third")
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("waiting")) == 2
                    and len(window.queue_panel.job_ids("running")) == 1, timeout=WAIT_MS)
    first, second, third = sorted(window.queue_panel.job_ids())
    for job_id in (first, third):  # the running one with it: Remove leaves it (Cancel stops it)
        window.queue_panel._items[job_id].setSelected(True)
    qtbot.mouseClick(window.queue_panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: third not in window.queue_panel.job_ids(), timeout=5000)
    assert window.queue_panel.state(first) == "running" and window.cancel_action.isEnabled()
    qtbot.mouseClick(window.queue_panel.cancel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.queue_panel.job_ids() == [first]
                    and window.queue_panel.state(first) == "cancelled", timeout=10_000)
    assert second not in window.queue_panel.job_ids()
    assert not list(window.settings.outputs_dir.rglob("*.png"))


def test_event_loop_never_blocks_while_a_job_runs(qtbot, window):  # noqa: ANN001
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    _type_prompt(qtbot, window, "responsive")
    window.prompt_panel.steps_spin.setValue(40)
    window.prompt_panel.batch_spin.setValue(2)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("running")), timeout=WAIT_MS)
    last[0] = time.perf_counter()
    timer.start()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    timer.stop()
    assert len(gaps) > 10
    worst = max(gaps)
    assert worst < 0.050, f"the Qt event loop stalled for {worst * 1000:.0f} ms"


def test_bad_input_is_one_sentence_and_nothing_is_queued(qtbot, window):  # noqa: ANN001
    window.prompt_panel.use_canvas_check.setChecked(True)
    qtbot.mouseClick(window.prompt_panel.generate_button, Qt.MouseButton.LeftButton)
    assert window.prompt_panel.error_label.isVisible()
    assert "canvas is empty" in window.prompt_panel.error_label.text()
    assert window.queue_panel.job_ids() == []
    window.prompt_panel.model_combo.clear()
    window.prompt_panel.use_canvas_check.setChecked(False)
    window.generate()
    assert "No model is selected" in window.prompt_panel.error_label.text()


def test_img2img_starts_from_the_canvas(qtbot, window):  # noqa: ANN001
    window.document.set_image(Image.new("RGB", (80, 72), (200, 30, 30)), "Open")
    window.prompt_panel.use_canvas_check.setChecked(True)
    assert (window.prompt_panel.width_spin.value(), window.prompt_panel.height_spin.value()) == (80, 72)
    window.prompt_panel.strength_spin.setValue(0.5)
    _type_prompt(qtbot, window, "make it blue")
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert window.document.image.size == (80, 72)
    assert window.document.recipe.strength == 0.5


def test_save_canvas_writes_the_recipe(qtbot, window, tmp_path):  # noqa: ANN001
    _type_prompt(qtbot, window, "saved picture")
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    for name in ("out.png", "out.jpg", "out.webp"):
        window.actions_.run(window.actions_.saving.save_canvas(tmp_path / name))
        qtbot.waitUntil(lambda n=name: (tmp_path / n).exists(), timeout=5000)
        assert read_recipe(tmp_path / name).prompt == "saved picture"


def test_canvas_zooms_with_the_wheel_pans_and_fits(qtbot, window):  # noqa: ANN001
    window.document.set_image(Image.new("RGB", (2048, 2048), (10, 120, 200)), "Open")
    fitted = window.canvas.zoom()
    assert fitted < 1.0
    center = QPointF(window.canvas.viewport().rect().center())
    wheel = QWheelEvent(center, window.canvas.mapToGlobal(center), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    window.canvas.wheelEvent(wheel)
    assert window.canvas.zoom() > fitted * 1.2
    assert window.status.zoom_label.text() == f"{window.canvas.zoom() * 100:.0f}%"
    window.canvas.actual_size()
    before = window.canvas.horizontalScrollBar().value()
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(200, 200))
    qtbot.mouseMove(viewport, QPoint(120, 200))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(120, 200))
    assert window.canvas.horizontalScrollBar().value() != before
    window.canvas.fit()
    assert abs(window.canvas.zoom() - fitted) < 1e-6


def test_inpainting_from_the_window_changes_only_the_masked_area(qtbot, window):  # noqa: ANN001
    import numpy as np

    from studio.core.mask import feather, fill_rect

    picture = Image.fromarray(np.random.default_rng(5).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    window.document.set_image(picture, "Open")
    window.document.edit_mask("Fill rectangle", lambda m: fill_rect(m, (70, 20, 110, 60)))
    qtbot.waitUntil(lambda: window.prompt_panel.inpaint_box.isVisible(), timeout=2000)
    window.prompt_panel.inpaint_box.feather_spin.setValue(4)
    boxes: list[object] = []
    window.canvas.show_preview = _spy(window.canvas.show_preview, boxes)
    _type_prompt(qtbot, window, "a red door")
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    result = np.asarray(window.document.image)
    outside = feather(window.document.mask, 4) == 0
    np.testing.assert_array_equal(result[outside], np.asarray(picture)[outside])
    assert (result[30:50, 80:100] != np.asarray(picture)[30:50, 80:100]).any()
    assert boxes and boxes[-1][3] is not None  # previews are placed over the inpainted region only
    recipe = window.document.recipe
    assert (recipe.width, recipe.height, recipe.inpaint_area) == (128, 96, "Only masked")
    assert window.document.history_labels()[-1] == "Generated"
    window.mask_toolbar.show_mask_action.setChecked(False)  # a hidden mask is not used
    qtbot.waitUntil(lambda: not window.prompt_panel.inpaint_box.isVisible(), timeout=2000)


def test_a_second_inpaint_queued_before_the_first_lands_keeps_the_first(qtbot, window, monkeypatch):  # noqa: ANN001
    import threading

    import numpy as np

    from studio.core.mask import fill_rect
    from studio.ui import result_landing

    threads: list[str] = []
    carry = result_landing.carry_changes
    monkeypatch.setattr(result_landing, "carry_changes",
                        lambda *a: threads.append(threading.current_thread().name) or carry(*a))

    picture = Image.fromarray(np.random.default_rng(6).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    window.document.set_image(picture, "Open")
    qtbot.waitUntil(lambda: window.status.model_label.text() == "tiny-sd", timeout=WAIT_MS)
    _type_prompt(qtbot, window, "a red door")
    window.document.edit_mask("A", lambda m: fill_rect(m, (8, 20, 40, 60)))
    window.generate()
    window.document.edit_mask("Clear", lambda m: fill_rect(m, (0, 0, 128, 96), erase=True))
    window.document.edit_mask("B", lambda m: fill_rect(m, (80, 20, 112, 60)))
    window.generate()  # asked for while the first runs: made from the picture without the first's result
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 2
                    and window.document.history_labels()[-2:] == ["Generated", "Generated"], timeout=WAIT_MS)
    result, before = np.asarray(window.document.image), np.asarray(picture)
    assert (result[30:50, 14:34] != before[30:50, 14:34]).any(), "the first inpaint was undone by the second"
    assert (result[30:50, 86:106] != before[30:50, 86:106]).any()
    np.testing.assert_array_equal(result[:, 56:64], before[:, 56:64])  # between the two: untouched
    assert threads and threading.main_thread().name not in threads  # 740 ms at 4096² on the window's thread


def test_the_picked_model_is_loaded_before_the_first_job(qtbot, window, tiny_model_dir):  # noqa: ANN001
    # The engine loads what the picker shows once it is up, so the status bar names it before any job runs.
    qtbot.waitUntil(lambda: window.status.model_label.text() == "tiny-sd", timeout=WAIT_MS)
    assert not window.queue_panel.job_ids()
    panel = window.prompt_panel
    likely = window.service._likely
    assert Path(likely.model) == tiny_model_dir.resolve()
    assert (likely.width, likely.height, likely.cfg_scale) == (panel.width_spin.value(), panel.height_spin.value(),
                                                               panel.cfg_spin.value())
    # The size and CFG the person sets are what a GPU warms up for (its first picture skips the first-use costs).
    panel.set_size(768, 512)
    panel.cfg_spin.setValue(4.5)
    likely = window.service._likely
    assert (likely.width, likely.height, likely.cfg_scale) == (768, 512, 4.5)
    assert (likely.memory, likely.speed) == (window.settings.memory, window.settings.speed)
    panel.model_picker.set_models([], "", str(tiny_model_dir.parent))  # nothing to pick: nothing to prepare
    assert window.service._likely is None


def test_results_are_converted_for_display_off_the_window_thread(qtbot, window, monkeypatch):  # noqa: ANN001
    """At 1024x1024 converting a result took the window's thread 3-8 ms; it is done in a worker thread now,
    and the canvas only copies it in. Where the result differs from the canvas picture is found there too."""
    import threading

    from studio.core import comparison
    from studio.ui import canvas as canvas_module
    from studio.ui import canvas_picture, canvas_preview

    threads: list[str] = []
    compared: list[str] = []
    convert, real_pixmap = canvas_module.pil_to_pixmap_ready_qimage, canvas_preview.pil_to_qpixmap
    compare = comparison.changed_box

    def converting(image):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread().name)
        return convert(image)

    def on_this_thread(image):  # noqa: ANN001, ANN202
        if image.size == (64, 64):  # a preview (8x8 here) is shown as it comes, on this thread
            raise AssertionError("the canvas converted a result on the window's thread")
        return real_pixmap(image)

    def comparing(a, b):  # noqa: ANN001, ANN202
        compared.append(threading.current_thread().name)
        return compare(a, b)

    monkeypatch.setattr(canvas_module, "pil_to_pixmap_ready_qimage", converting)
    for module in (canvas_preview, canvas_picture):
        monkeypatch.setattr(module, "pil_to_qpixmap", on_this_thread)
    monkeypatch.setattr(comparison, "changed_box", comparing)
    window.prompt_panel.batch_spin.setValue(2)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert len(threads) == 2 and threading.main_thread().name not in threads
    assert len(compared) == 1 and threading.main_thread().name not in compared  # the second against the first
    first, second = (Image.open(p) for p in sorted(window.settings.outputs_dir.rglob("*.png"))[-2:])
    differs = compare(first.convert("RGB"), second.convert("RGB"))
    assert window.document.history_labels()[-1] == "Generated" and window.document._steps[-1].box == differs
    shown = window.canvas._image_item.pixmap().toImage()
    assert (shown.width(), shown.height()) == window.canvas.image().size == (64, 64)


def test_a_model_loaded_ahead_of_any_job_is_not_said_to_be_working(qtbot, window):  # noqa: ANN001
    from studio.core.events import EngineStatus

    window.handle_event(EngineStatus(device="CPU · 1 thread · float32", model="tiny-sd", message=""))
    assert window.status.message_label.text() == "tiny-sd is loaded."


def test_a_filter_that_failed_leads_the_finished_line_as_a_problem(qtbot, window):  # noqa: ANN001
    from studio.core.events import JobFinished

    failed = "The plugin Boom failed (RuntimeError: kaput). The picture was kept without Boom."
    window.handle_event(JobFinished(5, (), 0.36, notes=("Everything fits on the GPU.",), warnings=(failed,)))
    label = window.status.message_label
    assert label.text() == f"{failed} Finished in 0.36 s. Everything fits on the GPU."
    assert label.property("error") is True
    window.handle_event(JobFinished(6, (), 0.5))
    assert label.text() == "Finished in 0.50 s." and label.property("error") is False


def test_a_cancelled_or_failed_job_s_notes_are_shown(qtbot, window):  # noqa: ANN001
    # "Cancelled during <filter>: the picture was kept without ..." never reached the person: only "Cancelled."
    from studio.core.events import JobCancelled, JobFailed

    during = "Cancelled during Blur: the picture was kept without Blur."
    window.handle_event(JobCancelled(7, was_running=True, message=during))
    assert window.status.message_label.text() == during
    window.handle_event(JobCancelled(9, was_running=True, notes=("The picture was handed on unsaved.",)))
    assert window.status.message_label.text() == "Cancelled. The picture was handed on unsaved."
    # On a GPU the memory plan's reason is the job's first note: the filter's cancel still leads, said once.
    window.handle_event(JobCancelled(10, was_running=True, notes=("Everything fits on the GPU.",), message=during))
    assert window.status.message_label.text() == f"{during} Everything fits on the GPU."
    window.handle_event(JobFailed(8, "The model is damaged.", notes=("The picture was handed on unsaved.",)))
    assert window.status.message_label.text() == "The model is damaged. The picture was handed on unsaved."


def test_a_picture_that_lands_while_steps_can_be_redone_waits_in_the_gallery(qtbot, window):  # noqa: ANN001
    window.document.set_image(Image.new("RGB", (64, 64), (9, 9, 9)), "Open")
    window.document.edit_mask("Paint", lambda m: (m.__setitem__((slice(0, 8), slice(0, 8)), 255), (0, 0, 8, 8))[1])
    window.document.undo()  # comparing: the stroke can be redone
    labels = window.document.history_labels()
    window.mask_toolbar.show_mask_action.setChecked(False)  # a plain text-to-image job
    _type_prompt(qtbot, window, "a lighthouse")
    window.generate()
    qtbot.waitUntil(lambda: "Gallery" in window.status.message_label.text(), timeout=WAIT_MS)
    assert window.document.can_redo() and window.document.history_labels() == labels
    window.document.redo()
    assert window.document.has_mask  # the undone stroke was kept
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=10_000)  # the picture is not lost


def test_the_held_back_picture_is_used_as_the_sentence_says_with_enter(qtbot, window):  # noqa: ANN001
    """The sentence named only double-clicking, though Enter on the picture in the Gallery uses it too."""
    window.document.set_image(Image.new("RGB", (64, 64), (9, 9, 9)), "Open")
    window.document.set_image(Image.new("RGB", (64, 64), (90, 9, 9)), "Paint")
    window.document.undo()
    window.mask_toolbar.show_mask_action.setChecked(False)
    _type_prompt(qtbot, window, "a lighthouse")
    window.generate()
    qtbot.waitUntil(lambda: "Gallery" in window.status.message_label.text(), timeout=WAIT_MS)
    assert "(double-click it or press Enter to use it, or Ctrl+Shift+N from anywhere)" in \
        window.status.message_label.text()
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=10_000)
    window.gallery.select_row(0)
    window.gallery.view.setFocus()
    qtbot.keyClick(window.gallery.view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.document.history_labels()[-1].startswith("Open 0"), timeout=10_000)


def test_ctrl_shift_n_puts_the_held_back_picture_on_the_canvas_from_anywhere(qtbot, window):  # noqa: ANN001
    """The held-back sentence could only send the person to the Gallery; Generate > Use New Picture (Ctrl+Shift+N)
    takes the picture from wherever focus is, and is off while none is held."""
    window.document.set_image(Image.new("RGB", (64, 64), (9, 9, 9)), "Open")
    window.document.set_image(Image.new("RGB", (64, 64), (90, 9, 9)), "Paint")
    window.document.undo()
    assert not window.results.use_held_action.isEnabled()
    window.mask_toolbar.show_mask_action.setChecked(False)
    _type_prompt(qtbot, window, "a lighthouse")
    window.generate()
    qtbot.waitUntil(lambda: "Gallery" in window.status.message_label.text(), timeout=WAIT_MS)
    assert "Ctrl+Shift+N" in window.status.message_label.text() and window.results.use_held_action.isEnabled()
    window.prompt_panel.prompt_edit.setFocus()
    qtbot.keyClick(window.prompt_panel.prompt_edit, Qt.Key.Key_N,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.document.history_labels()[-1].startswith("Open 0"), timeout=10_000)
    assert window.document.history_labels()[:1] == ["Open"] and not window.results.use_held_action.isEnabled()


def test_the_autosaves_snapshot_copies_the_mask_off_the_window_thread_and_again_if_painted_meanwhile(
        qtbot, qt_loop, monkeypatch) -> None:  # noqa: ANN001
    """At 4096x4096 copying the mask held the window's thread 5-6 ms after every result. A copy made in a worker
    while the person painted is not of one moment: it is made again, and the snapshot is the mask as painted."""
    import threading
    from types import SimpleNamespace

    from studio.core.document import Document
    from studio.ui.main_window import MainWindow

    doc = Document()
    doc.set_image(Image.new("RGB", (40, 30)), "Open")
    copied_on: list[str] = []
    real_to_thread = asyncio.to_thread

    async def to_thread(work, *args):  # noqa: ANN001, ANN202
        result = await real_to_thread(lambda: (copied_on.append(threading.current_thread().name), work(*args))[1])
        if len(copied_on) == 1:  # the person paints while the first copy is made
            doc.edit_mask("Brush", lambda m: (m.__setitem__((slice(2, 5), slice(3, 7)), 255), (3, 2, 7, 5))[1])
        return result

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    taken = asyncio.ensure_future(MainWindow.snapshot(SimpleNamespace(document=doc)))
    qtbot.waitUntil(taken.done, timeout=5000)
    snapshot = taken.result()
    assert len(copied_on) == 2 and threading.main_thread().name not in copied_on
    assert snapshot.revision == doc.revision and np.array_equal(snapshot.mask, doc.mask)
    assert snapshot.mask is not doc.mask and snapshot.mask[3, 4] == 255 and snapshot.image is doc.image


def test_closing_with_jobs_running_or_waiting_asks_first(qtbot, window):  # noqa: ANN001
    """Closing the window used to cancel the running job and drop the waiting ones without a word; now it asks,
    and Cancel keeps the window, its jobs and its autosave."""
    asked: list[str] = []
    answers = [False, True]
    window.asks_before_closing = True
    window.confirm_quit = lambda question: asked.append(question) or answers.pop(0)
    window.prompt_panel.steps_spin.setValue(600)
    for prompt in ("long job", "queued 1", "queued 2"):
        _type_prompt(qtbot, window, prompt)
        window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("waiting")) == 2
                    and len(window.queue_panel.job_ids("running")) == 1, timeout=WAIT_MS)
    autosaver = window.autosaver
    assert window.close() is False  # asked from a task (a dialog's own loop here stopped qasync's tasks)
    qtbot.waitUntil(lambda: window.closing is not None and window.closing.done(), timeout=5000)
    assert asked == ["1 job is running and 2 are waiting; quit and cancel them?"]
    assert window.isVisible() and window.autosaver is autosaver and autosaver.folder.exists()
    assert len(window.service.waiting()) == 2 and window.service.running() is not None
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert len(asked) == 2 and window.autosaver is None
    qtbot.waitUntil(lambda: not window.service.waiting() and window.service.running() is None, timeout=10_000)


def _unsaved_mask(window) -> None:  # noqa: ANN001
    from studio.core.mask import fill_rect

    window.document.set_image(Image.new("RGB", (64, 64), "gray"), "Open")
    window.document.mark_saved()
    window.document.edit_mask("Brush", lambda mask: fill_rect(mask, (8, 8, 30, 30)))


def test_closing_with_a_painted_mask_asks_and_keeps_it_for_the_next_start(qtbot, window):  # noqa: ANN001
    """Closing with a painted mask and no jobs used to delete the autosave without a word: the mask was gone."""
    from studio.services.autosave import find_recoverable, kept_at_close
    from studio.ui.close_questions import DISCARD_WORK, KEEP_WORK

    window.asks_before_closing = True
    answers: list[str | None] = [None, KEEP_WORK]
    asked: list[int] = []
    window.confirm_unsaved_work = lambda: asked.append(1) or answers.pop(0)
    _unsaved_mask(window)
    autosaver = window.autosaver
    assert window.close() is False  # asked from a task; Cancel keeps the window and its work
    qtbot.waitUntil(lambda: window.closing is not None and window.closing.done(), timeout=5000)
    assert window.isVisible() and window.autosaver is autosaver and window.document.has_mask
    window.close()  # Keep for Next Time: written, and left for the next start to offer back
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    (found,) = find_recoverable(autosaver.root)
    assert kept_at_close(found) and found.mask[10, 10] == 255 and found.mask.sum() == window.document.mask.sum()
    assert DISCARD_WORK != KEEP_WORK


def test_closing_after_opening_generating_or_undoing_to_there_does_not_ask(qtbot, window, tmp_path):  # noqa: ANN001
    """Work kept elsewhere (an opened file, a generated picture in the outputs) is not asked about: only what closing
    would lose is."""
    import pytest

    from studio.core.mask import fill_rect

    window.asks_before_closing = True
    window.confirm_unsaved_work = lambda: pytest.fail("asked about work that is saved")
    picture = tmp_path / "opened.png"
    Image.new("RGB", (64, 64), "gray").save(picture)
    opened = window.actions_.run(window.actions_.open_path(picture))
    qtbot.waitUntil(opened.done, timeout=WAIT_MS)
    assert not window.document.changed_since_save
    _type_prompt(qtbot, window, "a saved picture")
    window.generate()
    qtbot.waitUntil(lambda: window.document.recipe is not None, timeout=WAIT_MS)
    _wait_engine_idle(qtbot, window)
    assert not window.document.changed_since_save
    window.document.edit_mask("Brush", lambda mask: fill_rect(mask, (8, 8, 30, 30)))
    assert window.document.changed_since_save
    window.document.undo()
    assert window.close() is True


def test_closing_with_unsaved_work_may_discard_it(qtbot, window):  # noqa: ANN001
    from studio.services.autosave import find_recoverable
    from studio.ui.close_questions import DISCARD_WORK

    window.asks_before_closing = True
    asked: list[int] = []
    window.confirm_unsaved_work = lambda: asked.append(1) or DISCARD_WORK
    root = window.autosaver.root
    _unsaved_mask(window)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert asked == [1] and find_recoverable(root) == []


def test_closing_with_no_loop_left_to_ask_from_keeps_the_work(qtbot, window, monkeypatch):  # noqa: ANN001
    """A script that closes the window after its loop ended (tests/benchmarks/real_window.py) crashed in closeEvent
    ("Event loop is closed"): nothing can ask then, so the work is kept for the next start, as after a crash."""
    import studio.ui.window_lifecycle as window_lifecycle
    from studio.services.autosave import find_recoverable, kept_at_close

    window.asks_before_closing = True
    window.confirm_unsaved_work = lambda: pytest.fail("asked with no loop to ask from")
    _unsaved_mask(window)
    saved = window.actions_.run(window.autosaver.save_now())
    qtbot.waitUntil(saved.done, timeout=10_000)
    root = window.autosaver.root
    monkeypatch.setattr(window_lifecycle, "loop_can_run_tasks", lambda: False)
    assert window.close() is True
    (found,) = find_recoverable(root)
    assert kept_at_close(found) and found.mask[10, 10] == 255


def test_closing_adds_the_history_entries_kept_meanwhile_or_says_they_are_added_next_time(qtbot, qt_loop, studio_home,
                                                                                         tmp_path):
    # The window's close threw away what closing the history said: whether entries kept while another program held
    # the history's lock were added, or not yet, nobody learnt (the window had gone; only the log knew).
    from history_testing import Locker, entry, prompts_on_disk

    from studio.core.environment import GeneratorEnvironment
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.plugin_host.registry import builtin_registry
    from studio.services.history_store import HistoryStore
    from studio.services.jobs import JobService
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    path = tmp_path / "history.db"
    history = HistoryStore(path, busy_timeout=0.3)  # another program's lock is waited for briefly
    told: list[tuple[str, str]] = []

    def window() -> MainWindow:
        service = JobService(builtin_registry(), GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                             warm_up=False)
        win = MainWindow(load_settings(paths), service, paths.data_dir, history, paths.cache_dir)
        qtbot.addWidget(win)
        win.asks_before_closing = True
        win.tell_entries_not_added = lambda sentence: told.append((sentence, win.status.message_label.text()))
        win.show()
        return win

    nothing_kept = window()
    nothing_kept.close()
    assert not nothing_kept.isVisible()  # at once: nothing to wait for
    locker = Locker(path)
    try:
        history.keep_for_later(entry("made while locked"))
        locked = window()
        locked.close()
        assert locked.isVisible()  # it waits for the lock first
        qtbot.waitUntil(lambda: not locked.isVisible(), timeout=10_000)
    finally:
        locker.release()
    assert told == [(f"1 entry could not be added to the history yet (the pictures are kept): Another program still "
                     f"holds the lock on the history database {path}. Studio adds it the next time it opens the "
                     "history.",
                     "Adding 1 entry kept while another program held the history database's lock, before Studio "
                     "closes…")]
    assert prompts_on_disk(path) == []
    free = window()  # the lock is gone: added as the window closes, without a word more
    free.close()
    qtbot.waitUntil(lambda: not free.isVisible(), timeout=10_000)
    assert len(told) == 1 and prompts_on_disk(path) == ["made while locked"]
    assert history.close() is None


def _hold_a_new_picture(qtbot, window) -> None:  # noqa: ANN001
    window.document.set_image(Image.new("RGB", (64, 64), (9, 9, 9)), "Open")
    window.document.set_image(Image.new("RGB", (64, 64), (90, 9, 9)), "Paint")
    window.document.undo()
    window.mask_toolbar.show_mask_action.setChecked(False)
    _type_prompt(qtbot, window, "a lighthouse")
    window.generate()
    qtbot.waitUntil(lambda: window.results.use_held_action.isEnabled(), timeout=WAIT_MS)


def test_use_new_picture_is_off_once_the_gallery_used_the_held_picture(qtbot, window):  # noqa: ANN001
    """Used from the Gallery, the picture stayed held: Ctrl+Shift+N later put the old picture over a newer canvas."""
    _hold_a_new_picture(qtbot, window)
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=10_000)
    window.gallery.select_row(0)
    window.gallery.view.setFocus()
    qtbot.keyClick(window.gallery.view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.document.history_labels()[-1].startswith("Open 0"), timeout=10_000)
    assert not window.results.use_held_action.isEnabled() and window.results.held_path is None


def test_use_new_picture_is_off_once_a_later_result_lands_on_the_canvas(qtbot, window):  # noqa: ANN001
    _hold_a_new_picture(qtbot, window)
    window.document.redo()  # nothing left to redo: the next result goes on the canvas
    steps = len(window.document.history_labels())
    window.generate()
    qtbot.waitUntil(lambda: len(window.document.history_labels()) > steps, timeout=WAIT_MS)
    assert not window.results.use_held_action.isEnabled() and window.results.held_path is None


def test_use_new_picture_refuses_a_held_picture_deleted_since_and_keeps_the_canvas(qtbot, window):  # noqa: ANN001
    _hold_a_new_picture(qtbot, window)
    held = window.results.held_path
    labels = window.document.history_labels()
    held.unlink()  # deleted from the Gallery
    window.results.use_held_action.trigger()
    assert window.status.message_label.text() == (f"{held.name} is no longer held back for the canvas; nothing was "
                                                  "changed. To use it, open it from the Gallery.")
    assert window.document.history_labels() == labels and not window.results.use_held_action.isEnabled()
