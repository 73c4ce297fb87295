"""The Model Library's Remove and symbolic links: a link in the models folder is removed as a link, and the question
says so; files reached through a link to a folder outside the models folder are never deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from model_files import diffusers_folder, sd1

from studio.core.settings import Settings


@pytest.fixture
def library(qtbot, qt_loop, settings: Settings, tmp_path: Path):  # noqa: ANN001, ANN201
    """The Model Library over a models folder holding a link to a model folder elsewhere, and a linked sub-folder."""
    from studio.ui.models_dialog import ModelsDialog

    checkpoints = settings.models_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / "tiny").symlink_to(diffusers_folder(tmp_path / "c11-ext" / "tiny"))
    (checkpoints / "sub").symlink_to(sd1(tmp_path / "elsewhere" / "x.safetensors").parent)
    dialog = ModelsDialog(settings, tmp_path / "cache", [].append)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.message.text() == "" and len(dialog.items) > 2, timeout=10000)
    yield dialog
    dialog.done(0)


def test_remove_asks_about_the_link_and_keeps_the_files_it_points_to(qtbot, library, tmp_path):  # noqa: ANN001
    """It asked "Delete …/c11-ext/tiny?" and a yes deleted the real folder outside the models folder."""
    target = (tmp_path / "c11-ext" / "tiny").resolve()
    link = library.settings.models_dir / "checkpoints" / "tiny"
    item = next(i for i in library.items if i.name == "tiny")
    asked: list[str] = []
    library.confirm = lambda title, text, action=None: asked.append(text) or True
    library.start(library.remove(item))
    qtbot.waitUntil(lambda: not os.path.lexists(link), timeout=10000)
    qtbot.waitUntil(lambda: library.message.text().startswith("Removed the link"), timeout=10000)
    assert asked == [f"Remove the link tiny? The files it points to, in {target}, are kept."]
    assert library.message.text() == f"Removed the link {link}; the files it points to, in {target}, are kept."
    assert (target / "model_index.json").is_file()


def test_remove_refuses_a_model_reached_through_a_linked_sub_folder(qtbot, library, tmp_path):  # noqa: ANN001
    outside = (tmp_path / "elsewhere" / "x.safetensors").resolve()
    item = next(i for i in library.items if i.name == "x")
    asked: list[str] = []
    library.confirm = lambda title, text, action=None: asked.append(text) or True
    library.start(library.remove(item))
    qtbot.waitUntil(lambda: "outside Studio's models folder" in library.message.text(), timeout=10000)
    assert asked == [] and outside.is_file()
