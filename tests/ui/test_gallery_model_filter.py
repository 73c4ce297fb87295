"""The gallery's model filter lists the models that still have pictures, each once whatever its case."""

from __future__ import annotations

from test_gallery_keyboard import _add_pictures, _reload


def _models(gallery) -> list[str]:  # noqa: ANN001
    return [gallery.model_combo.itemText(i) for i in range(gallery.model_combo.count())]


def test_deleting_a_model_s_last_picture_takes_it_off_the_filter_and_shows_all_models(qtbot, window,
                                                                                     tmp_path):  # noqa: ANN001
    ids = _add_pictures(window, tmp_path, ["tiny-sd", "gone model", "tiny-sd"])
    _reload(qtbot, window)
    gallery, model = window.gallery, window.gallery.model
    assert _models(gallery) == ["All models", "gone model", "tiny-sd"]
    gallery.model_combo.setCurrentIndex(gallery.model_combo.findText("gone model"))
    qtbot.waitUntil(lambda: model.rowCount() == 1 and model.settled, timeout=5000)
    gallery.select_row(0)
    deletion = gallery.delete_selected(confirm=False)
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert deletion.exception() is None
    assert _models(gallery) == ["All models", "tiny-sd"] and gallery.model_combo.currentData() is None
    qtbot.waitUntil(lambda: model.rowCount() == 2 and model.settled, timeout=5000)
    assert {model.entry_at(r).id for r in range(2)} == {ids[0], ids[2]}
    assert gallery.count_label.text() == "2 pictures"
    assert window.status.message_label.text() == \
        "No pictures made with gone model are left: the gallery shows all models."


def test_a_model_keeps_its_filter_while_it_has_pictures_left(qtbot, window, tmp_path):  # noqa: ANN001
    _add_pictures(window, tmp_path, ["tiny-sd", "tiny-sd", "other"])
    _reload(qtbot, window)
    gallery, model = window.gallery, window.gallery.model
    gallery.model_combo.setCurrentIndex(gallery.model_combo.findText("tiny-sd"))
    qtbot.waitUntil(lambda: model.rowCount() == 2 and model.settled, timeout=5000)
    window.status.set_message("")
    gallery.select_row(0)
    deletion = gallery.delete_selected(confirm=False)
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert gallery.model_combo.currentText() == "tiny-sd" and model.rowCount() == 1
    assert window.status.message_label.text() == ""


def test_models_differing_only_in_case_are_listed_once_and_filter_together(qtbot, window, tmp_path):  # noqa: ANN001
    ids = _add_pictures(window, tmp_path, ["dreamshaper", "DreamShaper", "tiny-sd"])
    _reload(qtbot, window)
    gallery, model = window.gallery, window.gallery.model
    assert _models(gallery) == ["All models", "DreamShaper", "tiny-sd"]  # as most recently written
    gallery.model_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: model.rowCount() == 2 and model.settled, timeout=5000)
    gallery.select_row(0)  # the newest: DreamShaper
    deletion = gallery.delete_selected(confirm=False)
    qtbot.waitUntil(deletion.done, timeout=5000)
    assert _models(gallery) == ["All models", "dreamshaper", "tiny-sd"]
    assert gallery.model_combo.currentText() == "dreamshaper"  # the same model to the filter: it stays on
    assert model.rowCount() == 1 and model.entry_at(0).id == ids[0]
