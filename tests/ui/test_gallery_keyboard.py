"""The gallery from the keyboard: focusing it selects a picture, so Enter, Delete and the buttons work at once."""

from __future__ import annotations

import time

from PIL import Image
from PySide6.QtCore import Qt

from studio.core.images import save_image
from studio.services.history_store import HistoryEntry
from studio.ui import delete_question


def _add_pictures(window, tmp_path, models: list[str]) -> list[int]:  # noqa: ANN001
    """One picture per model name, oldest first, with real files."""
    ids = []
    for i, model_name in enumerate(models):
        path = tmp_path / f"{i}.png"
        save_image(Image.new("RGB", (64, 64), (40 * i, 90, 90)), path)
        ids.append(window.history.add(HistoryEntry(
            prompt=f"picture {i}", negative_prompt="", model_name=model_name, model_path="", model_hash="",
            seed=i, steps=4, cfg_scale=7.0, sampler="Euler a", width=64, height=64, strength=None,
            image_path=str(path), created=time.time() - (len(models) - i) * 60, elapsed=1.0)))
    return ids


def _reload(qtbot, window) -> None:  # noqa: ANN001
    task = window.actions_.run(window.gallery.reload())
    qtbot.waitUntil(lambda: task.done() and window.gallery.model.settled, timeout=5000)


def _focus(qtbot, view) -> None:  # noqa: ANN001
    view.clearFocus()
    view.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(view.hasFocus, timeout=2000)


def test_tabbing_into_the_gallery_selects_a_picture_so_enter_and_delete_work_at_once(qtbot, window, tmp_path,
                                                                                     monkeypatch):  # noqa: ANN001
    ids = _add_pictures(window, tmp_path, ["tiny-sd"] * 3)
    _reload(qtbot, window)
    gallery = window.gallery
    assert gallery.selected_entry() is None and not gallery.load_button.isEnabled()
    _focus(qtbot, gallery.view)
    assert gallery.selected_entry().id == ids[-1]  # the newest, first in the grid
    assert gallery.load_button.isEnabled() and gallery.rerun_button.isEnabled()
    used: list[HistoryEntry] = []
    gallery.use_as_input_requested.connect(used.append)
    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    assert [entry.id for entry in used] == [ids[-1]]
    monkeypatch.setattr(delete_question, "ask_to_delete", lambda *a: True)
    qtbot.keyClick(gallery.view, Qt.Key.Key_End)
    assert gallery.selected_entry().id == ids[0]
    qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=5000)
    assert window.history.get(ids[0]) is None


def test_home_and_arrows_select_even_where_the_cursor_cannot_move(qtbot, window, tmp_path):  # noqa: ANN001
    ids = _add_pictures(window, tmp_path, ["tiny-sd"])
    _reload(qtbot, window)
    gallery = window.gallery
    _focus(qtbot, gallery.view)
    gallery.view.clearSelection()  # as a Ctrl+click leaves it
    for key in (Qt.Key.Key_Home, Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_End):
        gallery.view.clearSelection()
        qtbot.keyClick(gallery.view, key)
        assert gallery.selected_entry() is not None and gallery.selected_entry().id == ids[0], key
        assert gallery.load_button.isEnabled()


def test_focusing_an_empty_gallery_selects_nothing_and_says_nothing(qtbot, window):  # noqa: ANN001
    _reload(qtbot, window)
    _focus(qtbot, window.gallery.view)
    qtbot.keyClick(window.gallery.view, Qt.Key.Key_Home)
    assert window.gallery.selected_entry() is None and not window.gallery.load_button.isEnabled()
