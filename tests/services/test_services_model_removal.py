"""Removing models: deleted inside the models folder, only unlinked elsewhere, one sentence when it cannot be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_files import lora, sd1

from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_library import IMPORTS_FILE, scan_library
from studio.services.model_imports import import_model, link_folder
from studio.services.model_removal import remove_model


def test_remove_deletes_inside_the_models_folder_and_only_unlinks_other_folders(tmp_path):
    models = tmp_path / "models"
    import_model(sd1(tmp_path / "dl" / "dreamy.safetensors"), models)
    other = tmp_path / "ComfyUI" / "models"
    theirs = lora(other / "loras" / "theirs.safetensors")
    linked = link_folder(other, [])
    assert linked == [other.resolve()] and link_folder(other, linked) == linked
    item, kept = remove_model("dreamy", models, linked)
    assert not item.path.exists() and kept == linked
    assert json.loads((models / IMPORTS_FILE).read_text()) == {}
    with pytest.raises(InvalidRequest, match="does not delete other tools' files"):
        remove_model("theirs", models, linked)
    _, kept = remove_model(str(other), models, linked)
    assert kept == [] and theirs.exists()
    with pytest.raises(InvalidRequest, match="no model named"):
        remove_model("nothing", models, [])


def test_a_model_that_cannot_be_deleted_is_one_sentence_and_stays_listed(tmp_path, monkeypatch):
    """A read-only drive or a file in use raised PermissionError out of `studio models remove`: a traceback."""
    models = tmp_path / "models"
    import_model(sd1(tmp_path / "dl" / "dreamy.safetensors"), models)

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(ModelError) as caught:
        remove_model("dreamy", models, [])
    assert str(caught.value) == (f"dreamy could not be deleted from {(models / 'checkpoints').resolve()}: "
                                 "Operation not permitted.")
    monkeypatch.undo()
    assert [i.name for i in scan_library(models)] == ["dreamy"]
    assert json.loads((models / IMPORTS_FILE).read_text())  # still remembers where it came from


def test_a_model_in_a_kind_folder_that_is_a_symlink_is_removed_like_any_other(tmp_path):
    """People move checkpoints/ to another drive and link it back: its models are still Studio's to remove."""
    models, elsewhere = tmp_path / "models", tmp_path / "big-drive" / "checkpoints"
    elsewhere.mkdir(parents=True)
    models.mkdir()
    (models / "checkpoints").symlink_to(elsewhere)
    import_model(sd1(tmp_path / "dreamy.safetensors"), models)
    item, links = remove_model("dreamy", models, [])
    assert item.name == "dreamy" and links == [] and not (elsewhere / "dreamy.safetensors").exists()


def test_a_model_is_removed_or_unlinked_by_a_path_relative_to_where_the_command_runs(tmp_path, monkeypatch):
    models, a1111 = tmp_path / "models", tmp_path / "a1111"
    lora(a1111 / "Lora" / "ink.safetensors")
    mine = import_model(lora(tmp_path / "mine.safetensors"), models).item.path
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidRequest, match="is in a linked folder"):  # found, not "no model named"
        remove_model("a1111/Lora/ink.safetensors", models, [a1111])
    item, links = remove_model("a1111", models, [a1111])
    assert links == [] and item.path == a1111
    item, links = remove_model("models/loras/mine.safetensors", models, [a1111])
    assert item.path == mine and not mine.exists() and links == [a1111]
