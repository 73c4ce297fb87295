"""Dialogs at their minimum size: every wrapped line of text in sight, no path cut off at a label's edge, and at
least three rows of each list. Before, Style Weights shrank to 93×165 with its table gone, Models in Memory showed
no row and a clipped intro, Model Library one row, and Plugins cut its folder's path mid-line."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QAbstractItemView, QDialog, QLabel
from ui.test_memory_ui import open_dialog as open_memory
from ui.test_models_ui import open_library

from studio.plugin_host.host import PluginHost
from studio.ui.style_weights_dialog import StyleWeightsDialog


def _shrink(qtbot, dialog: QDialog) -> None:  # noqa: ANN001
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.resize(1, 1)  # clamped to the minimum size
    qtbot.waitUntil(lambda: dialog.size() == dialog.minimumSize())
    dialog.layout().activate()


def _text_fits(label: QLabel) -> bool:
    """Every line of the label's text is in sight: no line runs past its edge, none is cut off at its bottom."""
    document = QTextDocument()
    document.setDefaultFont(label.font())
    document.setDocumentMargin(0)
    if label.textFormat() == label.textFormat().PlainText or "<" not in label.text():
        document.setPlainText(label.text())
    else:
        document.setHtml(label.text())
    room = label.contentsRect()
    document.setTextWidth(room.width())
    return document.idealWidth() <= room.width() + 1 and label.height() >= label.heightForWidth(label.width())


def _shows_rows(view: QAbstractItemView, rows: int = 3) -> bool:
    row = view.sizeHintForRow(0) if view.model().rowCount() else view.fontMetrics().height()
    return view.viewport().height() >= rows * row


def _check(dialog: QDialog, view: QAbstractItemView) -> None:
    assert _shows_rows(view), (dialog.windowTitle(), dialog.size())
    for label in dialog.findChildren(QLabel):
        if label.isVisible() and label.wordWrap() and label.text():
            assert _text_fits(label), (dialog.windowTitle(), label.text(), label.size())


def test_style_weights_memory_and_library_keep_their_rows_and_text_at_their_minimum_size(qtbot, window):  # noqa: ANN001
    weights = StyleWeightsDialog(window.service.env, window)
    qtbot.addWidget(weights)
    _shrink(qtbot, weights)
    _check(weights, weights.table)
    weights.close()
    memory = open_memory(qtbot, window)
    _shrink(qtbot, memory)
    _check(memory, memory.table)
    memory.close()
    library = open_library(qtbot, window)
    _shrink(qtbot, library)
    _check(library, library.tree)
    library.close()


@pytest.mark.usefixtures("qt_loop")
def test_the_plugins_folder_is_shown_whole_at_the_plugins_dialogs_minimum_size(qtbot, plugin_sandbox, tmp_path):  # noqa: ANN001
    from studio.ui.plugins_dialog import PluginsDialog

    deep = tmp_path / "a-rather-long-folder-name" / "and-another-long-one" / "studio-data" / "plugins"
    host = PluginHost(deep, scan_environment=False)
    host.refresh()
    dialog = PluginsDialog(host)
    qtbot.addWidget(dialog)
    _shrink(qtbot, dialog)
    assert "Plugins go to" in dialog.details.text()
    _check(dialog, dialog.tree)


def _selectable_texts(dialog: QDialog) -> list[str]:
    """The text of every label and text browser in ``dialog`` a person can select (and so copy)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QTextBrowser

    return [label.text() for label in dialog.findChildren(QLabel)
            if label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse] + \
        [browser.toPlainText() for browser in dialog.findChildren(QTextBrowser)]


def test_a_path_a_person_may_select_and_copy_carries_no_break_marks(qtbot, window, plugin_sandbox):  # noqa: ANN001
    """breakable_path's zero-width spaces went with a copied selection: the Style Weights intro, selectable so its
    folder can be copied, gave a path no terminal or file manager finds; so did the empty Plugins dialog's
    "Plugins go to …"."""
    from studio.ui.plugins_dialog import PluginsDialog

    weights = StyleWeightsDialog(window.service.env, window)
    qtbot.addWidget(weights)
    selectable = _selectable_texts(weights)
    assert selectable and all("\u200b" not in text for text in selectable)
    assert any(str(weights.folder) in text for text in selectable)
    host = PluginHost(plugin_sandbox / "plugins", scan_environment=False)
    host.refresh()
    plugins = PluginsDialog(host, parent=window)
    qtbot.addWidget(plugins)
    selectable = _selectable_texts(plugins)
    assert any(str(host.plugins_dir) in text for text in selectable)  # no plugins: the folder they go to
    assert all("\u200b" not in text for text in selectable)
    library = open_library(qtbot, window)
    assert all("\u200b" not in text for text in _selectable_texts(library))
