"""The Edit menu's words Undo/Redo follow the history, worked out once per step, never per brush dab."""

from __future__ import annotations

from canvas_testing import drag, open_test_picture

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
