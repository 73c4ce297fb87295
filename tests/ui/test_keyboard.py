"""Keys in the field that has focus: letters in a drop-down pick its items, not tools; Esc in a field cancels the
running job, and with none running leaves the field for the canvas."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def test_letters_in_a_drop_down_pick_its_items_and_leave_the_tools_and_mask_alone(qtbot, window):  # noqa: ANN001
    combo = window.prompt_panel.scheduler_combo
    window.mask_toolbar.show_mask_action.setChecked(True)
    window.canvas.set_tool("hand")
    combo.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is combo, timeout=2000)
    qtbot.keyClick(combo, Qt.Key.Key_U)  # UniPC
    qtbot.keyClick(combo, Qt.Key.Key_M)
    qtbot.keyClick(combo, Qt.Key.Key_L)
    assert combo.currentText() == "UniPC"
    assert window.canvas.mask_visible() and window.canvas.tool == "hand"
    window.canvas.setFocus()  # on the canvas the letters are the tools'
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_L)
    assert window.canvas.tool == "lasso"


def test_esc_in_a_field_cancels_a_running_job_and_otherwise_leaves_the_field_for_the_canvas(qtbot, window):  # noqa: ANN001
    """The Cancel button says "Stop the running job (Esc)", but Esc in the prompt or the seed box only moved focus
    to the canvas, and a second Esc cancelled."""
    cancels: list[bool] = []
    window.cancel_action.triggered.connect(lambda: cancels.append(True))
    panel = window.prompt_panel
    fields = (panel.prompt_edit, panel.seed_edit, panel.steps_spin, window.gallery.search_edit)
    window.cancel_action.setEnabled(True)  # as while a job runs
    for field in fields:
        field.setFocus()
        qtbot.waitUntil(lambda field=field: QApplication.focusWidget() is field, timeout=2000)
        qtbot.keyClick(field, Qt.Key.Key_Escape)
        assert QApplication.focusWidget() is field
    assert cancels == [True] * len(fields)
    window.cancel_action.setEnabled(False)  # no job: Esc leaves the field
    search = window.gallery.search_edit
    search.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is search, timeout=2000)
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is window.canvas and len(cancels) == len(fields)


def test_esc_in_a_search_box_with_text_clears_it_and_leaves_the_job_alone(qtbot, window):  # noqa: ANN001
    """Esc in the gallery's search box cancelled a running job and left the search as it was."""
    cancels: list[bool] = []
    window.cancel_action.triggered.connect(lambda: cancels.append(True))
    window.cancel_action.setEnabled(True)  # as while a job runs
    search = window.gallery.search_edit
    search.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is search, timeout=2000)
    qtbot.keyClicks(search, "fox")
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == "" and cancels == [] and QApplication.focusWidget() is search
    qtbot.keyClick(search, Qt.Key.Key_Escape)  # empty now: the job's Esc
    assert cancels == [True]


def test_esc_with_a_drop_down_list_open_closes_the_list_and_leaves_the_job_alone(qtbot, window):  # noqa: ANN001
    cancels: list[bool] = []
    window.cancel_action.setEnabled(True)
    window.cancel_action.triggered.connect(lambda: cancels.append(True))
    combo = window.prompt_panel.scheduler_combo
    combo.setFocus()
    combo.showPopup()
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=2000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=2000)
    assert cancels == []


def test_delete_removes_the_selected_queue_rows_and_arrows_walk_the_undo_history(qtbot, window):  # noqa: ANN001
    from PIL import Image

    from studio.core.requests import GenerationRequest

    queue = window.queue_panel
    queue.add_job(41, GenerationRequest(model="m", prompt="a waiting job"))
    removed: list[int] = []
    queue.remove_requested.connect(removed.append)
    queue._items[41].setSelected(True)
    queue.list.setFocus()
    qtbot.waitUntil(queue.list.hasFocus, timeout=2000)
    qtbot.keyClick(queue.list, Qt.Key.Key_Delete)
    assert removed == [41]

    window.document.set_image(Image.new("RGB", (64, 64)), "Open")
    window.document.edit_mask("Paint", lambda m: (m.__setitem__((slice(0, 8), slice(0, 8)), 255), (0, 0, 8, 8))[1])
    assert window.document.history_position == 2
    panel = window.history_panel
    panel.setFocus()
    qtbot.waitUntil(lambda: panel.hasFocus() and panel.currentRow() == 2, timeout=2000)
    qtbot.keyClick(panel, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: window.document.history_position == 1, timeout=2000)
    qtbot.keyClick(panel, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: window.document.history_position == 2, timeout=2000)



def test_a_history_row_chosen_while_the_brush_is_down_is_not_left_selected(qtbot, window):  # noqa: ANN001
    """The window refuses a history jump mid-stroke; the list kept the chosen row selected, showing a state the
    document was not in (and a second click on that row did nothing)."""
    from PIL import Image
    from PySide6.QtCore import QPointF

    doc = window.document
    doc.set_image(Image.new("RGB", (64, 64)), "Open")
    doc.edit_mask("Paint", lambda m: (m.__setitem__((slice(0, 8), slice(0, 8)), 255), (0, 0, 8, 8))[1])
    panel, canvas = window.history_panel, window.canvas
    qtbot.waitUntil(lambda: panel.count() == 3 and panel.currentRow() == 2, timeout=2000)
    canvas.set_tool("brush")
    at = canvas.mapFromScene(QPointF(30, 30))
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert canvas.busy
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=panel.visualItemRect(panel.item(0)).center())
    assert doc.history_position == 2 and panel.currentRow() == 2
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: panel.count() == 4, timeout=2000)  # the stroke is a step of its own
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=panel.visualItemRect(panel.item(0)).center())
    assert doc.history_position == 0 and panel.currentRow() == 0


def test_letters_in_the_undo_history_pick_tools_and_undo_nothing(qtbot, window):  # noqa: ANN001
    """The history list searched its rows by letter: F (the frame tool) made "Fill rectangle" current, which
    undid every step after it."""
    from PIL import Image

    doc = window.document
    doc.set_image(Image.new("RGB", (64, 64)), "Open")
    doc.edit_mask("Fill rectangle", lambda m: (m.__setitem__((slice(0, 8), slice(0, 8)), 255), (0, 0, 8, 8))[1])
    doc.edit_mask("Paint mask", lambda m: (m.__setitem__((slice(9, 12), slice(0, 8)), 255), (0, 9, 8, 12))[1])
    window.canvas.set_tool("hand")
    panel = window.history_panel
    panel.setFocus()
    qtbot.waitUntil(lambda: panel.hasFocus() and panel.currentRow() == 3, timeout=2000)
    qtbot.keyClick(panel, Qt.Key.Key_F)
    assert window.canvas.tool == "frame"
    qtbot.keyClick(panel, Qt.Key.Key_S)  # no tool's: "Start" is not searched for either
    qtbot.keyClick(panel, Qt.Key.Key_O)
    assert doc.history_position == 3 and panel.currentRow() == 3


def test_ctrl_equals_zooms_in_and_a_file_that_is_not_a_picture_is_not_dropped_into_the_prompt(qtbot, window,  # noqa: ANN001
                                                                                            tmp_path):
    from PIL import Image
    from PySide6.QtCore import QMimeData, QUrl

    window.document.set_image(Image.new("RGB", (64, 64)), "Open")
    before = window.canvas.zoom()
    window.canvas.setFocus()
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.zoom() > before

    edit = window.prompt_panel.prompt_edit
    edit.setPlainText("a fox")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(notes))])
    mime.setText(QUrl.fromLocalFile(str(notes)).toString())  # as file managers offer it
    assert not edit.canInsertFromMimeData(mime)
    edit.insertFromMimeData(mime)
    assert edit.toPlainText() == "a fox"
    text = QMimeData()
    text.setText(" in snow")  # dragged words still go in
    assert edit.canInsertFromMimeData(text)


def test_closed_dialogs_go_and_the_prompt_recall_list_stays_bounded(qtbot, window):  # noqa: ANN001
    from PySide6.QtWidgets import QDialog

    from studio.services.history_queries import RECENT_PROMPTS as RECALLED

    actions = window.plugin_actions
    actions.edit_dialog = lambda dialog: False  # the person cancels each
    colour = window.service.registry.get("postprocessor", "color")
    for _ in range(3):
        actions.open_processor(colour)
        actions.open_chain()
        window.models.library_action.trigger()
        window.models.dialog.reject()
    qtbot.waitUntil(lambda: not window.findChildren(QDialog), timeout=5000)

    edit = window.prompt_panel.prompt_edit
    for number in range(RECALLED + 5):
        edit.remember(f"prompt {number}")
    assert len(edit._history) == RECALLED and edit._history[0] == f"prompt {RECALLED + 4}"


def test_tab_from_the_canvas_never_stops_on_the_generate_panel_s_scroll_area(qtbot, window):  # noqa: ANN001
    """Tab from the canvas landed on the Generate panel's scroll area: a stop with no focus ring, where the next keys
    scrolled the panel unseen. Every stop Tab reaches from the canvas is a control a person can see."""
    from PySide6.QtWidgets import QScrollArea

    window.show()
    qtbot.waitExposed(window)
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Tab)
    landed = QApplication.focusWidget()
    assert landed is not None and not isinstance(landed, QScrollArea), landed
    assert window.prompt_panel.findChild(QScrollArea).focusPolicy() == Qt.FocusPolicy.NoFocus
    assert landed.focusPolicy() & Qt.FocusPolicy.TabFocus


def test_ctrl_f_shows_the_gallery_and_puts_focus_in_its_search_box(qtbot, window):  # noqa: ANN001
    """There was no key to reach the gallery's search; Ctrl+F now does, from the canvas or a field, showing the
    Gallery panel if it was closed or behind Undo History."""
    from PySide6.QtWidgets import QDockWidget

    window.show()
    qtbot.waitExposed(window)
    dock = window.findChild(QDockWidget, "dock-gallery")
    dock.hide()
    search = window.gallery.search_edit
    search.setText("fox")
    for start in (window.canvas, window.prompt_panel.prompt_edit):
        start.setFocus()
        qtbot.waitUntil(lambda start=start: QApplication.focusWidget() is start, timeout=2000)
        qtbot.keyClick(start, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: QApplication.focusWidget() is search, timeout=2000)
        assert dock.isVisible() and search.selectedText() == "fox"  # typing replaces the last search
        dock.hide()


def test_shift_esc_cancels_all_jobs_from_the_canvas_or_a_field(qtbot, window):  # noqa: ANN001
    cancels: list[bool] = []
    window.cancel_all_action.triggered.connect(lambda: cancels.append(True))
    window.cancel_all_action.setEnabled(True)  # as while jobs wait
    for start in (window.canvas, window.prompt_panel.prompt_edit, window.prompt_panel.seed_edit):
        start.setFocus()
        qtbot.waitUntil(lambda start=start: QApplication.focusWidget() is start, timeout=2000)
        qtbot.keyClick(start, Qt.Key.Key_Escape, Qt.KeyboardModifier.ShiftModifier)
    assert cancels == [True] * 3
    assert QApplication.focusWidget() is window.prompt_panel.seed_edit  # not an Esc that leaves the field
