"""A post-processor's dialog keeps every row whole, however short the screen makes it."""

from __future__ import annotations

from studio.plugin_host.registry import builtin_registry
from studio.ui.post_process_dialog import PostProcessDialog


def test_a_dialog_squeezed_by_a_short_screen_never_cuts_its_rows(qtbot, qt_loop):  # noqa: ANN001
    """At 2x scaling a screen is short enough to press the dialog to its minimum height; Qt counted the wrapped
    description as one line there, so the form got less than its rows and the reference picture's box was cut."""
    restyle = builtin_registry().get("postprocessor", "restyle")
    dialog = PostProcessDialog(restyle, {}, image_sources=[("Canvas picture", lambda: None)])
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.about.height() > dialog.about.fontMetrics().height() * 2  # the description wraps: the case here
    dialog.resize(dialog.width(), 200)  # as a short screen does (the window system caps it)
    qtbot.waitUntil(lambda: dialog.height() < 600, timeout=2000)
    form = dialog.form
    assert form.height() >= form.minimumSizeHint().height()
    picker = form.editor("reference")
    assert picker.height() >= picker.combo.height()  # the box's bottom edge is inside its row
    editors = sorted(form._editors.values(), key=lambda editor: editor.y())
    for above, below in zip(editors, editors[1:]):
        assert above.geometry().bottom() < below.y(), (above.objectName(), below.objectName())
    assert editors[-1].geometry().bottom() < form.height()  # the last row is not cut by the form's edge
