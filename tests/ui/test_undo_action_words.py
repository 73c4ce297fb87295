"""The Edit menu's words Undo/Redo and the Undo History panel's rows follow the history: worked out once per step,
never per brush dab."""

from __future__ import annotations

from canvas_testing import drag, open_test_picture
from PySide6.QtCore import QPointF, Qt

from studio.ui.canvas_tools import BRUSH


def test_a_painted_stroke_of_many_dabs_names_undo_and_redo_once(qtbot, window, monkeypatch):  # noqa: ANN001
    open_test_picture(window)
    document, named = window.document, []
    for which in ("undo_description", "redo_description"):
        real = getattr(document, which)
        monkeypatch.setattr(document, which, lambda real=real, which=which: named.append(which) or real())
    heard = []
    document.add_listener(lambda change: heard.append(change))  # every dab tells the document's listeners
    window.canvas.set_tool(BRUSH)
    window.canvas.set_brush(size=10, hardness=1.0)
    drag(qtbot, window.canvas, [(20 + 6 * i, 40 + 3 * i) for i in range(30)])

    assert len(heard) > 10  # the stroke was many dabs
    assert named == ["undo_description", "redo_description"]  # once, when the stroke became a step
    assert window.actions_.undo.text() == "&Undo Paint mask" and window.actions_.redo.text() == "&Redo"
    window.actions_.undo.trigger()
    assert window.actions_.redo.text() == "&Redo Paint mask"


def test_the_history_panel_names_its_rows_once_per_step_however_long_the_stroke_pauses(qtbot, window,  # noqa: ANN001
                                                                                        monkeypatch):
    open_test_picture(window)
    document, canvas, named = window.document, window.canvas, []
    qtbot.waitUntil(lambda: window.history_panel.count() == 2, timeout=5000)
    real = document.history_descriptions
    monkeypatch.setattr(document, "history_descriptions", lambda: named.append(1) or real())
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=10, hardness=1.0)
    points = [canvas.mapFromScene(QPointF(20 + 8 * i, 40 + 4 * i)) for i in range(10)]
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=points[0])
    for point in points[1:]:
        qtbot.mouseMove(canvas.viewport(), point)
        # A pause in the stroke: the window's views are brought up to date with the mask painted so far.
        qtbot.waitUntil(lambda: not window._document_timer.isActive(), timeout=5000)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=points[-1])
    qtbot.waitUntil(lambda: window.history_panel.count() == 3, timeout=5000)

    assert named == [1]  # once, for the step the stroke became
    assert window.history_panel.item(2).text() == "Paint mask" and window.history_panel.currentRow() == 2


def test_a_painted_stroke_of_many_dabs_sets_the_document_actions_only_as_the_history_changes(  # noqa: ANN201
        qtbot, window, monkeypatch):  # noqa: ANN001
    open_test_picture(window)
    actions, set_to = window.actions_, []
    for name in ("undo", "redo", "save", "copy", "copy_masked", "extend", "scale", "open_mask", "save_mask"):
        action = getattr(actions, name)
        monkeypatch.setattr(action, "setEnabled",
                            lambda on, real=action.setEnabled, name=name: set_to.append(name) or real(on))
    heard = []
    window.document.add_listener(lambda change: heard.append(change))
    window.canvas.set_tool(BRUSH)
    window.canvas.set_brush(size=10, hardness=1.0)
    drag(qtbot, window.canvas, [(20 + 6 * i, 40 + 3 * i) for i in range(30)])
    qtbot.waitUntil(lambda: not window._document_timer.isActive(), timeout=5000)

    assert len(heard) > 10  # the stroke was many dabs
    assert set_to == []  # Undo could take the picture back before the stroke and Redo had nothing: nothing to set
    window.document.go_to(0)  # back to no picture: everything that needs one is off, Redo on
    assert not actions.undo.isEnabled() and actions.redo.isEnabled() and not actions.save.isEnabled()
    window.document.go_to(2)
    assert actions.undo.isEnabled() and not actions.redo.isEnabled() and actions.save.isEnabled()
