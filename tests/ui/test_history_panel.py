"""The Undo History panel: each step named as Undo and Redo name it, a generated picture by how it was made, its
prompt's start and its seed; a click on a row goes to that state."""

from __future__ import annotations

import os
from dataclasses import replace

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from studio.core.document_steps import GENERATED
from studio.core.metadata import Recipe


def test_the_undo_history_names_each_generated_picture_by_its_prompt_and_seed(qtbot, window):  # noqa: ANN001
    # The rows said only "Generated", so among many generated pictures the person could not tell which to go back to.
    doc, panel = window.document, window.history_panel
    doc.set_image(Image.new("RGB", (64, 48), (10, 20, 30)), "Open")
    made = Recipe("a red fox in the snow at dawn, oil painting", "", 4, "Euler", 7, 42, 64, 48, "tiny-sd")
    doc.set_image(Image.new("RGB", (64, 48), (9, 9, 9)), GENERATED, made)
    inpainted = replace(made, prompt="a fox in a very long prompt indeed", seed=4294967295, strength=0.5,
                        mask_blur=4)
    doc.set_image(Image.new("RGB", (64, 48), (8, 8, 8)), GENERATED, inpainted)
    doc.set_image(Image.new("RGB", (64, 48), (7, 7, 7)), "Filter: Invert colours", made)
    rows = ["Start", "Open", "Generated 'a red fox in the snow at…' (seed 42)",
            "Inpainted 'a fox in a very long pro…' (seed 4294967295)", "Invert colours filter"]
    qtbot.waitUntil(lambda: [panel.item(i).text() for i in range(panel.count())] == rows, timeout=5000)
    assert doc.history_labels()[1:3] == [GENERATED, GENERATED]  # the document keeps its labels
    assert [panel.item(i).toolTip() for i in range(panel.count())] == rows  # a row the panel cuts is read whole

    window.findChild(QDockWidget, "dock-undo history").raise_()
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    # Wider than the panel: cut in its middle (its seed in sight), not scrolled to, read whole in its tooltip.
    assert panel.fontMetrics().horizontalAdvance(rows[3]) > panel.viewport().width()
    assert not panel.horizontalScrollBar().isVisible() and panel.textElideMode() == Qt.TextElideMode.ElideMiddle

    panel.setCurrentRow(2)  # the row of the first generated picture: the document goes back to it
    qtbot.waitUntil(lambda: doc.history_position == 2, timeout=5000)
    assert doc.image.getpixel((0, 0)) == (9, 9, 9) and doc.undo_description() == rows[2]

    if shot := os.environ.get("STUDIO_HISTORY_PANEL_SHOT"):  # to look at: the rows as the dock shows them
        window.grab().save(shot)
