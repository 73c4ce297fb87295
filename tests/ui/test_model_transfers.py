"""The Model Library's downloads, said in the window's own words: a hub it cannot reach points to its Import button,
and a download stopped half-way is listed, to resume or delete."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hub_server import isolated_hub_client
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTreeWidgetItem
from unfinished_download import REPO, WEIGHTS, stop_half_way, vae_files, vae_hub

from studio.core.settings import Settings
from studio.core.units import format_size


@pytest.fixture
def dialog(qtbot, qt_loop, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    from studio.ui.models_dialog import ModelsDialog

    with isolated_hub_client(tmp_path / "hf", monkeypatch):
        changes: list = []
        library = ModelsDialog(settings, tmp_path / "cache", changes.append)
        qtbot.addWidget(library)
        library.show()
        qtbot.waitUntil(lambda: library.message.text() == "" and library.tree.topLevelItemCount() > 0, timeout=10000)
        yield library
        library.done(0)


def test_an_unreachable_hub_points_to_the_import_button_not_a_command(qtbot, dialog, monkeypatch):  # noqa: ANN001
    # It said "... Import a file you already have with `studio models import PATH`." in the window.
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    dialog.start(dialog.download("tester/tiny-sd"))
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Could not reach"), timeout=20000)
    assert dialog.message.text() == (f"Could not reach the model hub at http://127.0.0.1:{port}; Studio may be "
                                     "offline. Use Import to add a file you already have.")
    assert dialog.import_button.text() == "Import"  # the button the sentence names
    assert not dialog.resume_button.isVisible()  # no unfinished download to resume


def unfinished_rows(dialog) -> list[list[str]]:  # noqa: ANN001
    tree = dialog.tree
    return [[tree.topLevelItem(i).text(c) for c in range(5)] for i in range(tree.topLevelItemCount())
            if tree.topLevelItem(i).text(1) == "Unfinished download"]


def select_unfinished(qtbot, dialog) -> None:  # noqa: ANN001
    tree = dialog.tree
    row = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
               if tree.topLevelItem(i).text(1) == "Unfinished download")
    tree.setCurrentItem(row)
    qtbot.waitUntil(dialog.resume_button.isEnabled)


def test_a_download_stopped_half_way_is_listed_and_resume_finishes_it(qtbot, dialog, settings,  # noqa: ANN001
                                                                       monkeypatch):
    # After a crash mid-download the library said "No models yet: …", its partial files unsaid.
    models = settings.models_dir
    with vae_hub() as hub:
        total = stop_half_way(hub, models)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        dialog.start(dialog.reload())
        qtbot.waitUntil(lambda: bool(unfinished_rows(dialog)), timeout=10000)
        [stopped] = dialog.unfinished
        assert unfinished_rows(dialog) == [["tiny-vae", "Unfinished download", format_size(stopped.done_bytes), "",
                                            f"Hugging Face: {REPO}"]]
        assert dialog.resume_button.isVisible() and not dialog.resume_button.isEnabled()  # a model is selected
        select_unfinished(qtbot, dialog)
        assert dialog.details.text() == (f"{REPO}: {format_size(stopped.done_bytes)} of {format_size(total)} "
                                         f"downloaded, in {stopped.folder}. Resume downloads the rest; Remove deletes "
                                         "the partial files.")
        asked: list[str] = []
        dialog.confirm = lambda title, text, action=None: asked.append(text) or True
        qtbot.mouseClick(dialog.resume_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.message.text().startswith("Downloaded"), timeout=20000)
    assert asked and f"{format_size(total - stopped.done_bytes)} to fetch" in asked[0]  # only the rest
    assert unfinished_rows(dialog) == [] and "tiny-vae" in [i.name for i in dialog.items]
    assert (models / "vae" / "tiny-vae" / WEIGHTS).read_bytes() == vae_files()[WEIGHTS]


def test_remove_deletes_a_stopped_download_s_partial_files_after_asking(qtbot, dialog, settings):  # noqa: ANN001
    with vae_hub() as hub:
        stop_half_way(hub, settings.models_dir)
    dialog.start(dialog.reload())
    # Listed, then hashed and listed again: it was selected between the two, and the second list selected a model.
    qtbot.waitUntil(lambda: bool(unfinished_rows(dialog)) and dialog.message.text() == "", timeout=10000)
    select_unfinished(qtbot, dialog)
    [stopped] = dialog.unfinished
    answers = iter([False, True])
    asked: list[str] = []
    dialog.confirm = lambda title, text, action=None: asked.append(text) or next(answers)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(asked) == 1)
    assert stopped.folder.is_dir()  # said no
    assert asked[0] == f"Delete the unfinished download of {REPO} ({stopped.progress}) in {stopped.folder}?"
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text() == f"Deleted the unfinished download of {REPO}.", timeout=10000)
    assert not stopped.folder.exists() and unfinished_rows(dialog) == []


def test_the_selected_row_stays_selected_when_the_list_is_filled_again_after_hashing(qtbot, dialog, settings,  # noqa: ANN001
                                                                                     monkeypatch):
    """A selected unfinished download lost its selection to the first row (a model's) when hashing ended, so the
    next Remove asked to delete that model; a selected model stays too."""
    import threading

    from studio.ui import models_dialog

    with vae_hub() as hub:
        stop_half_way(hub, settings.models_dir)
    hashed, with_hashes = threading.Event(), models_dialog.with_hashes
    monkeypatch.setattr(models_dialog, "with_hashes", lambda *args: hashed.wait(20) and with_hashes(*args))
    tree = dialog.tree

    def listed_then_hashed(select: Callable[[list[QTreeWidgetItem]], QTreeWidgetItem]) -> str:
        """Select a row while the list waits for its hashes; the row selected once they are in."""
        hashed.clear()
        dialog.start(dialog.reload())
        qtbot.waitUntil(lambda: bool(unfinished_rows(dialog)) and dialog.message.text().startswith("Hashing"),
                        timeout=10000)
        rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
        assert rows[0].text(1) != "Unfinished download"  # where the selection went
        tree.setCurrentItem(chosen := select(rows))
        key = chosen.data(0, Qt.ItemDataRole.UserRole)
        hashed.set()
        qtbot.waitUntil(lambda: dialog.message.text() == "", timeout=10000)
        return key == tree.currentItem().data(0, Qt.ItemDataRole.UserRole)

    assert listed_then_hashed(lambda rows: [r for r in rows if r.text(1) != "Unfinished download"][-1])
    assert listed_then_hashed(lambda rows: next(r for r in rows if r.text(1) == "Unfinished download"))
    [stopped] = dialog.unfinished
    asked: list[str] = []
    dialog.confirm = lambda title, text, action=None: asked.append(text) or False
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(asked) == 1)
    assert asked == [f"Delete the unfinished download of {REPO} ({stopped.progress}) in {stopped.folder}?"]


def test_a_download_cancelled_in_the_window_is_listed_to_resume(qtbot, dialog, monkeypatch):  # noqa: ANN001
    with vae_hub(delay=0.02) as hub:  # a second for the whole file: the window's Cancel comes well before its end
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        dialog.confirm = lambda title, text, action=None: True
        dialog.progress.valueChanged.connect(lambda value: value > 100 and dialog._cancel.set())
        dialog.start(dialog.download(REPO))
        qtbot.waitUntil(lambda: dialog.message.text().startswith("Stopped"), timeout=20000)
    assert dialog.message.text() == (f"Stopped downloading {REPO}; select it in the list and Resume to go on where "
                                     "it stopped, or Remove its partial files.")
    assert [row[0] for row in unfinished_rows(dialog)] == ["tiny-vae"]
