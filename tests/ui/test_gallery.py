"""The gallery and the prompt box's memory: search, reuse, recall, styles, dropped pictures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QMessageBox

from studio.core.images import save_image
from studio.core.metadata import Recipe
from studio.services.history_errors import HistoryError, HistoryLocked
from studio.services.history_store import HistoryEntry
from studio.ui import delete_question

PROMPTS = ["a watercolor fox in a misty forest", "a lighthouse on a cliff at dusk", "portrait of an old sailor",
           "a red fox in the snow", "isometric city at night"]


@pytest.fixture
def filled(window, tmp_path, tiny_model_dir):  # noqa: ANN001, ANN201
    """Five pictures in the history, oldest first, with real files."""
    ids = []
    for i, prompt in enumerate(PROMPTS):
        path = tmp_path / f"{i}.png"
        color = (40 * i, 200 - 30 * i, 90)
        save_image(Image.new("RGB", (96, 64), color), path)
        ids.append(window.history.add(HistoryEntry(
            prompt=prompt, negative_prompt=f"blurry {i}", model_name="tiny-sd" if i % 2 else "other-model",
            model_path=str(tiny_model_dir), model_hash="0123456789", seed=1000 + i, steps=5 + i, cfg_scale=4.5 + i,
            sampler="DPM++ 2M Karras", width=96, height=64, strength=None, image_path=str(path),
            created=time.time() - (len(PROMPTS) - i) * 3600, elapsed=1.5)))
    return ids


def _reload(qtbot, window) -> None:  # noqa: ANN001
    task = window.actions_.run(window.gallery.reload())
    # A query the panel scheduled itself may supersede this one: wait until the newest has landed.
    qtbot.waitUntil(lambda: task.done() and window.gallery.model.settled, timeout=5000)


def _query(qtbot, window) -> None:  # noqa: ANN001
    task = window.gallery.apply_query()
    qtbot.waitUntil(lambda: task.done() and window.gallery.model.settled, timeout=5000)


def test_the_gallery_lists_newest_first_and_search_filters_as_you_type(qtbot, window, filled):  # noqa: ANN001
    _reload(qtbot, window)
    model = window.gallery.model
    assert model.rowCount() == 5
    assert [model.entry_at(r).prompt for r in range(5)] == PROMPTS[::-1]
    qtbot.keyClicks(window.gallery.search_edit, "fox")
    qtbot.waitUntil(lambda: model.rowCount() == 2 and model.settled, timeout=5000)  # the count follows the rows
    assert {model.entry_at(r).prompt for r in range(2)} == {PROMPTS[0], PROMPTS[3]}
    assert window.gallery.count_label.text() == "2 pictures"
    window.gallery.search_edit.setText("")
    qtbot.waitUntil(lambda: model.rowCount() == 5, timeout=5000)
    index = window.gallery.model_combo.findData("tiny-sd")
    window.gallery.model_combo.setCurrentIndex(index)
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=5000)
    assert all(model.entry_at(r).model_name == "tiny-sd" for r in range(2))
    window.gallery.model_combo.setCurrentIndex(0)
    window.gallery.date_combo.setCurrentIndex(window.gallery.date_combo.findText("Last 7 days"))
    qtbot.waitUntil(lambda: model.rowCount() == 5, timeout=5000)
    window.gallery.select_row(0)
    window.gallery.star_button.click()
    qtbot.waitUntil(lambda: model.entry_at(0).starred, timeout=5000)
    window.gallery.starred_button.setChecked(True)
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5000)
    assert model.entry_at(0).prompt == PROMPTS[-1] and model.entry_at(0).starred


def test_a_search_that_fails_shows_why_not_every_picture(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    _reload(qtbot, window)
    sentence = "The history database is damaged."

    def fail(query, limit=None):  # noqa: ANN001, ANN202
        raise HistoryError(sentence)

    monkeypatch.setattr(window.history, "search_ids", fail)
    window.gallery.search_edit.setText("fox")
    _query(qtbot, window)
    assert window.gallery.model.rowCount() == 0  # not the five unfiltered pictures
    assert sentence in window.gallery.count_label.text()
    assert window.status.message_label.text() == sentence


def test_a_reload_the_history_fails_says_why_instead_of_going_stale(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    _reload(qtbot, window)
    sentence = "The history database could not be used: no such table: entries."

    def fail():  # noqa: ANN202
        raise HistoryError(sentence)

    monkeypatch.setattr(window.history, "models", fail)
    task = window.actions_.run(window.gallery.reload())
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.exception() is None  # was raised out of reload: a failed task in the log, the gallery left stale
    assert window.status.message_label.text() == sentence


def test_a_history_removed_while_the_window_runs_starts_again_and_says_so(qtbot, window, filled):  # noqa: ANN001
    _reload(qtbot, window)
    path = window.history.path
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    _reload(qtbot, window)
    assert window.gallery.model.rowCount() == 0
    assert window.gallery.model.error is None
    assert window.status.message_label.text().startswith(f"The history database {path} was removed while Studio ran")
    window.history.add(HistoryEntry(prompt="after the removal", model_name="tiny-sd"))
    _reload(qtbot, window)
    assert [window.gallery.model.entry_at(r).prompt for r in range(window.gallery.model.rowCount())] == [
        "after the removal"]


def test_entries_kept_while_the_history_was_locked_are_added_by_the_window_once_it_is_free(qtbot, window, filled):  # noqa: ANN001
    import sqlite3

    _reload(qtbot, window)
    locker = sqlite3.connect(window.history.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    window.history.keep_for_later(HistoryEntry(prompt="kept while locked", model_name="tiny-sd"))
    task = window.gallery.retry_pending()
    qtbot.waitUntil(task.done, timeout=15000)  # off the UI thread, the store's own wait for the lock
    assert window.history.pending_count() == 1  # still locked: kept, not dropped
    locker.execute("ROLLBACK")
    locker.close()
    window.gallery._pending_timer.setInterval(50)  # the window's own retry, not a call from the test
    qtbot.waitUntil(lambda: window.history.pending_count() == 0 and window.gallery.model.rowCount() == 6,
                    timeout=5000)
    assert window.status.message_label.text() == (
        "The history database is free again: 1 entry kept while it was locked was added to the history.")
    assert window.gallery.model.entry_at(0).prompt == "kept while locked"


def test_thumbnails_load_lazily_and_tooltips_escape_markup(qtbot, window, filled):  # noqa: ANN001
    window.history.add(HistoryEntry(prompt="<b>bold</b> & <script>x</script>", outcome="failed",
                                    message="The GPU ran out of memory."))
    window.gallery.view.hide()  # nothing paints, so nothing asks for a thumbnail before this test does
    _reload(qtbot, window)
    model = window.gallery.model
    assert model.thumbnail(model.index(1)) is None  # asked for, not yet there
    qtbot.waitUntil(lambda: model.thumbnail(model.index(1)) is not None, timeout=5000)
    assert model.thumbnail(model.index(1)).width() == 96
    tip = model.data(model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "&lt;script&gt;" in tip and "<script>" not in tip
    assert "Failed" in tip


def test_an_entry_with_a_date_out_of_range_shows_an_unknown_date(qtbot, window):  # noqa: ANN001
    from studio.ui.gallery_model import entry_name

    window.history.add(HistoryEntry(prompt="ms timestamp", created=1e12))  # year 33658: datetime cannot hold it
    _reload(qtbot, window)
    model = window.gallery.model
    assert model.entry_at(0).prompt == "ms timestamp"
    assert "unknown date" in model.data(model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert entry_name(model.entry_at(0)) == "the picture “ms timestamp” from an unknown date"


def test_load_parameters_fills_every_field(qtbot, window, filled):  # noqa: ANN001
    _reload(qtbot, window)
    window.gallery.select_row(2)  # PROMPTS[2]
    entry = window.gallery.selected_entry()
    window.gallery.load_button.click()
    panel = window.prompt_panel
    qtbot.waitUntil(lambda: panel.prompt_edit.toPlainText() == entry.prompt, timeout=5000)
    assert panel.negative_edit.toPlainText() == entry.negative_prompt
    assert (panel.width_spin.value(), panel.height_spin.value()) == (96, 64)
    assert panel.steps_spin.value() == entry.steps
    assert panel.cfg_spin.value() == pytest.approx(entry.cfg_scale)
    assert panel.seed_edit.text() == str(entry.seed)
    assert panel.scheduler_combo.currentText() == "DPM++ 2M Karras"
    assert panel.selected_model() == entry.model_path


def test_loading_a_text_to_image_picture_takes_the_canvas_out_of_the_next_job(qtbot, window, filled):  # noqa: ANN001
    """A remake of a picture made from the prompt alone must not start from the canvas or its mask."""
    window.document.set_image(Image.new("RGB", (96, 64)), "Open")
    window.document.edit_mask("dab", lambda m: (m.__setitem__((slice(0, 8), slice(0, 8)), 255), (0, 0, 8, 8))[1])
    panel, shown = window.prompt_panel, window.mask_toolbar.show_mask_action
    panel.use_canvas_check.setChecked(True)
    shown.setChecked(True)
    _reload(qtbot, window)
    window.gallery.select_row(2)
    window.gallery.load_button.click()
    # The model's changed hash ("0123456789" then) may lead the line by now: its warnings come first once checked.
    qtbot.waitUntil(lambda: "Loaded the parameters" in window.status.message_label.text(), timeout=5000)
    assert not panel.use_canvas_check.isChecked() and not shown.isChecked()
    assert window.document.has_mask  # hidden, not lost
    assert "the canvas is not its input now" in window.status.message_label.text()


def test_loading_an_inpaint_puts_its_source_and_mask_back_without_converting_them_here(qtbot, window, tmp_path,
                                                                                       monkeypatch):  # noqa: ANN001
    """The source picture and its mask are read, converted for display and tinted in worker threads."""
    from studio.ui import canvas_picture, mask_overlay

    source = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), dtype=np.uint8)
    mask[10:40, 20:70] = 255
    save_image(Image.fromarray(source), tmp_path / "source.png")
    save_image(Image.fromarray(mask, "L"), tmp_path / "mask.png")
    window.history.add(HistoryEntry(
        prompt="an inpainted fox", seed=7, steps=5, cfg_scale=5.0, sampler="Euler", width=96, height=64,
        strength=0.8, image_path=str(tmp_path / "source.png"), source_image_path=str(tmp_path / "source.png"),
        source_mask_path=str(tmp_path / "mask.png"), params={"inpaint": {"padding": 16}}, elapsed=1.0))
    here: list[str] = []
    pixmap, tint = canvas_picture.pil_to_qpixmap, mask_overlay._tint
    monkeypatch.setattr(canvas_picture, "pil_to_qpixmap", lambda image: here.append("picture") or pixmap(image))
    monkeypatch.setattr(mask_overlay, "_tint", lambda *args: here.append(threading.current_thread().name)
                        or tint(*args))
    _reload(qtbot, window)
    window.gallery.select_row(0)
    window.gallery.load_button.click()
    qtbot.waitUntil(lambda: window.document.history_labels()[-1:] == ["Restore inpaint source"], timeout=5000)
    np.testing.assert_array_equal(np.asarray(window.document.image), source)
    np.testing.assert_array_equal(window.document.mask, mask)
    assert threading.main_thread().name not in here and "picture" not in here
    qtbot.waitUntil(lambda: window.prompt_panel.inpaint_box.isVisibleTo(window), timeout=2000)  # inpainting again


def test_use_as_input_and_run_again(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    _reload(qtbot, window)
    window.gallery.select_row(0)
    window.gallery.use_button.click()
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=5000)
    assert window.document.image.size == (96, 64)
    asked: list[str] = []  # the recorded hash is not the tiny model's: Studio must say so
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text, *a: asked.append(text) or QMessageBox.StandardButton.Yes)
    window.gallery.rerun_button.click()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=60_000)
    assert asked and "model file changed" in asked[0]
    rerun = window.document.recipe
    entry = window.history.get(filled[-1])
    assert (rerun.seed, rerun.steps, rerun.prompt, rerun.sampler) == (entry.seed, entry.steps, entry.prompt,
                                                                        entry.sampler)


def test_run_again_uses_the_person_s_memory_and_speed_settings(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    # "Run again" once submitted the request's defaults (speed "fast"), ignoring the person's Speed and Memory.
    _reload(qtbot, window)
    window.settings.memory, window.settings.speed = "low", "eager"
    submitted: list = []
    monkeypatch.setattr(window.service, "submit", submitted.append)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    window.gallery.select_row(0)
    window.gallery.rerun_button.click()
    qtbot.waitUntil(lambda: bool(submitted), timeout=10_000)
    assert (submitted[0].memory, submitted[0].speed, submitted[0].seed) == ("low", "eager", 1004)


def test_enter_uses_the_picture_and_delete_deletes_it_from_the_keyboard(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    _reload(qtbot, window)
    window.gallery.select_row(0)
    used: list[bool] = []
    window.gallery.use_as_input_requested.connect(lambda *a: used.append(True))
    window.gallery.view.setFocus()
    qtbot.waitUntil(window.gallery.view.hasFocus, timeout=2000)
    qtbot.keyClick(window.gallery.view, Qt.Key.Key_Return)
    assert used == [True]
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=5000)  # opened before its file goes
    monkeypatch.setattr(delete_question, "ask_to_delete", lambda *a: True)
    qtbot.keyClick(window.gallery.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 4, timeout=5000)


def test_delete_asks_and_removes_the_file(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    _reload(qtbot, window)
    window.gallery.select_row(0)
    path = window.gallery.selected_entry().image_path
    monkeypatch.setattr(delete_question, "ask_to_delete", lambda *a: False)
    window.gallery.delete_button.click()
    assert window.gallery.model.rowCount() == 5
    monkeypatch.setattr(delete_question, "ask_to_delete", lambda *a: True)
    window.gallery.delete_button.click()
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 4, timeout=5000)
    assert not __import__("pathlib").Path(path).exists()


def test_the_delete_question_says_delete_and_cancel_and_cancel_is_the_default(qtbot, window, filled):  # noqa: ANN001
    """It said Yes/No under "Delete picture"; now a warning titled "Delete Picture" whose buttons say what they do:
    Return or Escape cancels, and only "Delete" deletes."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    _reload(qtbot, window)
    window.gallery.select_row(0)
    path = __import__("pathlib").Path(window.gallery.selected_entry().image_path)
    seen: list[tuple] = []

    def answer(key: Qt.Key | None) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, lambda: answer(key))  # the question is not up yet
            return
        seen.append((box.windowTitle(), box.icon(), {b.text(): box.buttonRole(b) for b in box.buttons()},
                     *(b.text() if b else None for b in (box.defaultButton(), box.escapeButton()))))
        if key is None:
            next(b for b in box.buttons() if b.text() == "Delete").click()
        else:
            qtbot.keyClick(box, key)

    for key in (Qt.Key.Key_Return, Qt.Key.Key_Escape):
        QTimer.singleShot(0, lambda: answer(key))
        assert window.gallery.delete_selected() is None
        assert path.exists() and window.gallery.model.rowCount() == 5
    assert seen[0] == ("Delete Picture", QMessageBox.Icon.Warning,
                       {"Delete": QMessageBox.ButtonRole.DestructiveRole,
                        "Cancel": QMessageBox.ButtonRole.RejectRole},
                       "Cancel", "Cancel")
    QTimer.singleShot(0, lambda: answer(None))
    deletion = window.gallery.delete_selected()
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert not path.exists() and window.gallery.model.rowCount() == 4
    assert seen[0] == seen[1] == seen[2]


def test_star_and_delete_write_off_the_ui_thread_and_a_locked_history_changes_nothing(qtbot, window, filled,
                                                                                      monkeypatch):  # noqa: ANN001
    _reload(qtbot, window)
    gallery, model = window.gallery, window.gallery.model
    sentence = "The history database is locked by another program; close other Studio windows and try again."
    writers: list[threading.Thread] = []

    def locked(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        writers.append(threading.current_thread())
        raise HistoryLocked(sentence)

    monkeypatch.setattr(window.history, "set_starred", locked)
    monkeypatch.setattr(window.history, "delete", locked)
    gallery.select_row(1)
    star = gallery.toggle_star()
    qtbot.waitUntil(star.done, timeout=5000)
    assert star.exception() is None and window.status.message_label.text() == sentence
    assert not model.entry_at(1).starred and not window.history.get(filled[-2]).starred
    window.status.set_message("")
    deletion = gallery.delete_selected(confirm=False)
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert deletion.exception() is None and window.status.message_label.text() == sentence
    assert model.rowCount() == 5 and gallery.selected_entry().id == filled[-2]
    assert len(writers) == 2 and threading.main_thread() not in writers


def test_after_delete_the_next_picture_is_selected_else_the_previous(qtbot, window, filled):  # noqa: ANN001
    _reload(qtbot, window)
    gallery, model = window.gallery, window.gallery.model
    gallery.select_row(3)
    _reload(qtbot, window)  # remembers the selection across the refresh
    gallery.select_row(1)
    deletion = gallery.delete_selected(confirm=False)
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert model.rowCount() == 4 and gallery.selected_entry().id == filled[2]  # the one that was below it
    assert gallery.count_label.text() == "4 pictures"
    gallery.select_row(3)
    deletion = gallery.delete_selected(confirm=False)
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert gallery.selected_entry().id == filled[1]  # the last one went: the one before it


def test_ctrl_up_and_down_weigh_the_word_at_the_cursor_in_one_undo_step(qtbot, window):  # noqa: ANN001
    edit = window.prompt_panel.prompt_edit
    edit.setPlainText("a red fox in snow")
    cursor = edit.textCursor()
    cursor.setPosition(7)  # in "fox"
    edit.setTextCursor(cursor)
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(edit, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "a red (fox:1.2) in snow" and edit.textCursor().selectedText() == "fox"
    qtbot.keyClick(edit, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "a red (fox:1.1) in snow"
    edit.undo()
    assert edit.toPlainText() == "a red (fox:1.2) in snow"
    edit.setPlainText("🦊, red fox")  # an emoji is two places for Qt, one character for Python
    cursor = edit.textCursor()
    cursor.setPosition(4)
    cursor.setPosition(7, QTextCursor.MoveMode.KeepAnchor)
    edit.setTextCursor(cursor)
    assert cursor.selectedText() == "red"
    qtbot.keyClick(edit, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "🦊, (red:1.1) fox" and edit.textCursor().selectedText() == "red"


def test_up_and_down_walk_through_earlier_prompts(qtbot, window, filled):  # noqa: ANN001
    task = window.actions_.run(window.history_actions.start())
    qtbot.waitUntil(task.done, timeout=5000)
    edit = window.prompt_panel.prompt_edit
    edit.setPlainText("my draft")
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    assert edit.toPlainText() == PROMPTS[-1]
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    assert edit.toPlainText() == PROMPTS[-2]
    qtbot.keyClick(edit, Qt.Key.Key_Down)
    qtbot.keyClick(edit, Qt.Key.Key_Down)
    assert edit.toPlainText() == "my draft"


def test_typing_completes_earlier_prompts(qtbot, window, filled):  # noqa: ANN001
    task = window.actions_.run(window.history_actions.start())
    qtbot.waitUntil(task.done, timeout=5000)
    window.show()
    window.activateWindow()
    edit = window.prompt_panel.prompt_edit
    edit.clear()
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    qtbot.keyClicks(edit, "a light")
    completer = edit.completer
    assert completer.completionCount() == 1
    assert completer.currentCompletion() == "a lighthouse on a cliff at dusk"
    edit._accept_completion(completer.currentCompletion())
    assert edit.toPlainText() == "a lighthouse on a cliff at dusk"


def test_styles_apply_around_the_prompt_and_persist(qtbot, window):  # noqa: ANN001
    panel = window.prompt_panel
    panel.prompt_edit.setPlainText("a castle")
    panel.negative_edit.setPlainText("blurry")
    window.history_actions.add_style("Ink", "ink drawing of {prompt}, high contrast", "color")
    style = window.settings.styles[0]
    panel.styles_button.chosen.emit(style)
    assert panel.prompt_edit.toPlainText() == "ink drawing of a castle, high contrast"
    assert panel.negative_edit.toPlainText() == "blurry, color"
    panel.prompt_edit.undo()  # a style is one step Ctrl+Z takes back
    assert panel.prompt_edit.toPlainText() == "a castle"
    from studio.core.settings import load_settings

    assert [s.name for s in load_settings().styles] == ["Ink"]
    window.history_actions.delete_style(style)
    assert load_settings().styles == []


def test_insert_embedding_puts_its_name_in_the_prompt_box_last_used(qtbot, window, settings):  # noqa: ANN001
    import torch
    from safetensors.torch import save_file

    folder = settings.models_dir / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"emb_params": torch.zeros(2, 768)}, folder / "EasyNegative.safetensors")
    window.models.refresh()
    panel = window.prompt_panel

    def inserts() -> list:  # noqa: ANN202
        menu = next(a.menu() for a in panel.styles_button.menu().actions() if a.text() == "Insert Embedding")
        return [a for a in menu.actions() if a.isEnabled()]

    qtbot.waitUntil(lambda: [a.text() for a in inserts()] == ["EasyNegative"], timeout=10_000)
    from PySide6.QtWidgets import QMenu

    window.history_actions.add_style("Ink", "ink {prompt}", "")
    qtbot.wait(50)
    menus = len(panel.styles_button.findChildren(QMenu))
    for _ in range(5):  # every library refresh and style change: the same submenus, filled again
        panel.styles_button.set_embeddings(["EasyNegative"])
        panel.styles_button.set_styles(window.settings.styles)
    qtbot.wait(50)
    assert len(panel.styles_button.findChildren(QMenu)) == menus
    panel.prompt_edit.setPlainText("a castle")
    panel.prompt_edit.moveCursor(QTextCursor.MoveOperation.End)
    inserts()[0].trigger()
    assert panel.prompt_edit.toPlainText() == "a castle, EasyNegative"
    panel.negative_edit.setPlainText("")
    panel.negative_edit.setFocus()
    qtbot.waitUntil(panel.negative_edit.hasFocus, timeout=2000)
    inserts()[0].trigger()
    assert panel.negative_edit.toPlainText() == "EasyNegative"


def _drop_on_the_prompt(window, path, recipe: Recipe, size: tuple[int, int]) -> None:  # noqa: ANN001
    """A picture with ``recipe`` saved at ``path``, then dropped on the prompt box."""
    save_image(Image.fromarray(np.zeros((size[1], size[0], 3), dtype=np.uint8)), path, recipe)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.prompt_panel.prompt_edit.insertFromMimeData(mime)


def test_a_picture_dropped_on_the_prompt_box_loads_its_parameters(qtbot, window, tmp_path):  # noqa: ANN001
    recipe = Recipe("a knight, oil painting", "lowres", 28, "Euler", 6.5, 777, 512, 768, "some-model")
    _drop_on_the_prompt(window, tmp_path / "a1111.png", recipe, (512, 768))
    panel = window.prompt_panel
    qtbot.waitUntil(lambda: panel.prompt_edit.toPlainText() == "a knight, oil painting", timeout=5000)
    assert panel.negative_edit.toPlainText() == "lowres"
    loaded = (panel.steps_spin.value(), panel.seed_edit.text(), panel.scheduler_combo.currentText())
    assert loaded == (28, "777", "Euler")
    assert (panel.width_spin.value(), panel.height_spin.value()) == (512, 768)
    assert window.document.image is None  # parameters only: the canvas is not touched


def test_the_token_counters_count_as_the_text_encoder_reads(qtbot, window):  # noqa: ANN001
    panel = window.prompt_panel
    panel.prompt_edit.setPlainText("a photo of an astronaut riding a horse on mars, (red helmet:1.3)")
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "13/75", timeout=5000)  # brackets and weight not counted
    panel.negative_edit.setPlainText("blurry, " * 40)  # 80 tokens: read in two parts
    qtbot.waitUntil(lambda: panel.negative_tokens.text() == "80/150", timeout=5000)


def test_an_a1111_hires_picture_dropped_on_the_prompt_loads_both_passes(qtbot, window, tmp_path):  # noqa: ANN001
    from studio.core.hires import HiresFix

    recipe = Recipe("a knight", "", 28, "Euler", 6.5, 777, 512, 768, "some-model").with_hires(
        HiresFix(2.0, 10, 0.55, "Latent"))
    _drop_on_the_prompt(window, tmp_path / "hires.png", recipe, (1024, 1536))
    panel = window.prompt_panel
    qtbot.waitUntil(lambda: panel.prompt_edit.toPlainText() == "a knight", timeout=5000)
    assert (panel.width_spin.value(), panel.height_spin.value()) == (512, 768)
    assert panel.hires_box.hires() == HiresFix(2.0, 10, 0.55, "Latent")


def test_thumbnail_requests_for_rows_scrolled_away_are_dropped(qtbot, qt_loop, tmp_path, monkeypatch):  # noqa: ANN001
    import asyncio

    from studio.services.history_store import HistoryStore
    from studio.ui import thumbnails
    from studio.ui.gallery_panel import GalleryPanel

    picture = tmp_path / "p.png"
    save_image(Image.new("RGB", (32, 32), (200, 30, 30)), picture)
    store = HistoryStore(tmp_path / "history.db")
    store.add_many([HistoryEntry(prompt=f"p{i}", image_path=str(picture)) for i in range(300)])
    release = threading.Event()
    monkeypatch.setattr(thumbnails, "load_thumbnail", lambda path, cache: release.wait(10) and None)  # busy loaders
    gallery = GalleryPanel(store, tmp_path / "thumbs")
    qtbot.addWidget(gallery)
    try:
        gallery.resize(600, 500)
        gallery.show()
        task = asyncio.ensure_future(gallery.reload())
        qtbot.waitUntil(task.done, timeout=5000)
        gallery.view.viewport().repaint()
        loader = gallery.model.thumbnails
        assert loader._wanted  # the first screen's requests wait for the two busy loads
        bar = gallery.view.verticalScrollBar()
        bar.setValue(bar.maximum())
        gallery.view.viewport().repaint()
        wanted = [gallery.model.row_of(key) for key in loader._wanted]
        assert wanted and min(wanted) >= 250  # the bottom rows (and a screenful above), none from the top
    finally:
        release.set()
        qtbot.waitUntil(lambda: gallery.model.thumbnails._running == 0, timeout=5000)
        gallery.close()
        store.close()


def test_deleting_a_picture_removes_its_cached_thumbnail(qtbot, qt_loop, tmp_path):  # noqa: ANN001
    import asyncio

    from studio.services.history_store import HistoryStore
    from studio.ui.gallery_panel import GalleryPanel

    store = HistoryStore(tmp_path / "history.db")
    for name in ("kept", "private"):
        save_image(Image.new("RGB", (64, 64), (200, 30, 30)), tmp_path / f"{name}.png")
        store.add(HistoryEntry(prompt=name, image_path=str(tmp_path / f"{name}.png")))
    cache = tmp_path / "thumbs"
    gallery = GalleryPanel(store, cache)
    qtbot.addWidget(gallery)
    try:
        task = asyncio.ensure_future(gallery.reload())
        qtbot.waitUntil(task.done, timeout=5000)
        model = gallery.model
        for row in range(2):
            model.thumbnail(model.index(row))
        qtbot.waitUntil(lambda: len(list(cache.glob("*.jpg"))) == 2, timeout=5000)
        gallery.select_row(0)
        assert gallery.selected_entry().prompt == "private"
        deletion = gallery.delete_selected(confirm=False)
        qtbot.waitUntil(deletion.done, timeout=5000)
        assert not (tmp_path / "private.png").exists()
        assert len(list(cache.glob("*.jpg"))) == 1  # the other picture's stays
    finally:
        gallery.close()
        store.close()


def test_a_recalled_prompt_never_loses_the_draft_it_replaced(qtbot, window):  # noqa: ANN001
    """Up then a keystroke made the recalled prompt the draft, and setPlainText had cleared the undo history."""
    edit = window.prompt_panel.prompt_edit
    edit.set_history(["an older prompt"])
    edit.setFocus()
    qtbot.keyClicks(edit, "my long draft")
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    assert edit.toPlainText() == "an older prompt"
    qtbot.keyClicks(edit, "!")
    states = []
    for _ in range(3):  # (Qt may fold the "!" into the recall's step)
        edit.undo()
        states.append(edit.toPlainText())
    assert "my long draft" in states


def test_a_read_only_history_offers_no_star_or_delete_and_says_why(qtbot, qt_loop, tmp_path):  # noqa: ANN001
    # Where Studio may not write to the data folder the window shows the history read-only; Star and Delete stayed
    # on, and pressing them failed.
    import asyncio

    from studio.services.history_store import HistoryStore
    from studio.ui.gallery_panel import GalleryPanel

    picture = tmp_path / "fox.png"
    save_image(Image.new("RGB", (64, 64), (200, 30, 30)), picture)
    writer = HistoryStore(tmp_path / "history.db")
    writer.add(HistoryEntry(prompt="a fox", image_path=str(picture)))
    writer.close()
    store = HistoryStore(tmp_path / "history.db", read_only=True)
    gallery = GalleryPanel(store, tmp_path / "thumbs")
    qtbot.addWidget(gallery)
    try:
        task = asyncio.ensure_future(gallery.reload())
        qtbot.waitUntil(task.done, timeout=5000)
        gallery.select_row(0)
        assert gallery.load_button.isEnabled() and gallery.rerun_button.isEnabled() and gallery.use_button.isEnabled()
        for button in (gallery.star_button, gallery.delete_button):
            assert not button.isEnabled()
            assert button.toolTip().endswith("not possible, the history is read-only: Studio may not write to it "
                                             "or to its folder.")
        menu = gallery.context_menu()
        actions = {action.text(): action for action in menu.actions() if action.text()}
        assert actions["Load Parameters"].isEnabled() and actions["Show File"].isEnabled()
        assert not actions["Star / Unstar"].isEnabled() and not actions["Delete…"].isEnabled()
        assert "read-only" in actions["Delete…"].toolTip()
        gallery.show()
        gallery.view.setFocus()
        qtbot.waitUntil(gallery.view.hasFocus, timeout=2000)
        with qtbot.waitSignal(gallery.failed, timeout=2000) as said:
            qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)  # the key has no button to be off: it says why
        assert said.args == ["Pictures cannot be deleted here: the history is read-only: Studio may not write to "
                             "it or to its folder."]
        assert gallery.toggle_star() is None
        assert picture.exists() and [(e.prompt, e.starred) for e in store.search()] == [("a fox", False)]
    finally:
        gallery.close()
        store.close()


def test_the_model_filter_says_all_models_before_the_history_is_read(qtbot, tmp_path):  # noqa: ANN001
    # It was empty until the first reload ran (a blank box beside "Any time" at the window's start).
    from studio.services.history_store import HistoryStore
    from studio.ui.gallery_panel import GalleryPanel

    store = HistoryStore(tmp_path / "history.db")
    gallery = GalleryPanel(store, tmp_path / "thumbs")
    qtbot.addWidget(gallery)
    try:
        assert gallery.model_combo.currentText() == "All models" and gallery.model_combo.currentData() is None
    finally:
        store.close()


def test_failed_and_cancelled_jobs_are_not_counted_as_pictures(qtbot, window, filled, monkeypatch):  # noqa: ANN001
    """They are listed with the pictures (marked, to load or rerun) but have none: the count said "7 pictures"."""
    for outcome, prompt in (("failed", "a fox that failed"), ("cancelled", "a fox cancelled")):
        window.history.add(HistoryEntry(prompt=prompt, model_name="tiny-sd", seed=1, steps=4, cfg_scale=7,
                                        sampler="Euler", width=64, height=64, outcome=outcome, message="No."))
    _reload(qtbot, window)
    gallery = window.gallery
    assert gallery.model.rowCount() == 7
    assert gallery.count_label.text() == "5 pictures · 1 failed job · 1 cancelled job"
    assert "no picture" in gallery.count_label.toolTip()
    gallery.search_edit.setText("fox")
    _query(qtbot, window)
    assert gallery.count_label.text() == "2 pictures · 1 failed job · 1 cancelled job"
    gallery.search_edit.setText("sailor")
    _query(qtbot, window)
    assert gallery.count_label.text() == "1 picture" and gallery.count_label.toolTip() == ""
    gallery.search_edit.setText("")
    _query(qtbot, window)
    asked: list[str] = []
    monkeypatch.setattr(delete_question, "ask_to_delete", lambda parent, title, text: asked.append(text) or True)
    gallery.select_row(0)  # the newest: the cancelled job
    assert gallery.selected_entry().outcome == "cancelled"
    deletion = gallery.delete_selected()
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert asked == ["Delete this cancelled job from the history? This cannot be undone."]
    assert gallery.count_label.text() == "5 pictures · 1 failed job"


def test_a_plugin_picture_s_tooltip_shows_its_settings_not_empty_sd_fields():
    from studio.ui.gallery_model import tooltip

    entry = HistoryEntry(prompt="ui3 prompt", width=64, height=64, steps=0, sampler="", cfg_scale=0,
                         seed=991608711, model_name="Tester maker", generator="tp-maker",
                         params={"plugin": "tp-gen", "generator_params": {
                             "stripes": 5, "mode": "normal", "source": "/home/me/pictures/blue.png",
                             "other": "<picture 100x80>", "caption": "<C1>"}})
    tip = tooltip(entry)
    assert "64×64 · seed 991608711<br>" in tip
    assert "steps" not in tip and "CFG" not in tip and "[]" not in tip
    assert ("stripes: 5, mode: normal, source: blue.png, other: picture 100×80, caption: &lt;C1&gt;" in tip)
    sd = tooltip(HistoryEntry(prompt="p", width=64, height=64, steps=20, sampler="Euler a", cfg_scale=7, seed=1,
                              model_name="tiny-sd"))
    assert "64×64 · 20 steps · Euler a · CFG 7 · seed 1" in sd and "tiny-sd ·" in sd
