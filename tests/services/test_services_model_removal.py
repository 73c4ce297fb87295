"""Removing models: deleted inside the models folder, only unlinked elsewhere, one sentence when it cannot be."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from model_files import diffusers_folder, lora, sd1

from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_library import IMPORTS_FILE, scan_library
from studio.services.model_imports import import_model
from studio.services.model_links import link_paths
from studio.services.model_removal import remove_model, removal_words, what_removing_does


def test_remove_deletes_inside_the_models_folder_and_only_unlinks_other_folders(tmp_path):
    models = tmp_path / "models"
    import_model(sd1(tmp_path / "dl" / "dreamy.safetensors"), models)
    other = tmp_path / "ComfyUI" / "models"
    theirs = lora(other / "loras" / "theirs.safetensors")
    linked = link_paths(other, []).links
    assert linked == [other.resolve()] and link_paths(other, linked).links == linked
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


def test_a_model_that_is_a_link_in_the_models_folder_is_removed_as_a_link(tmp_path):
    """Remove followed the link and deleted the real folder on the other drive (and a LoRA file beside others)."""
    models, drive = tmp_path / "models", tmp_path / "bigdisk"
    tiny = diffusers_folder(drive / "tiny-sd")
    ink = lora(drive / "elsewhere" / "my ink.safetensors")
    (models / "checkpoints").mkdir(parents=True)
    (models / "loras").mkdir()
    (models / "checkpoints" / "tiny").symlink_to(tiny)
    (models / "loras" / "ink.safetensors").symlink_to(ink)
    items = {i.name: i for i in scan_library(models)}
    assert items["tiny"].source == f"Hugging Face: someone/tiny-sd (a link to {tiny.resolve()})"
    assert items["ink"].source == f"models folder (a link to {ink.resolve()})"
    assert removal_words(items["tiny"], models) == (
        f"Remove the link tiny? The files it points to, in {tiny.resolve()}, are kept.",
        f"Removed the link {models / 'checkpoints' / 'tiny'}; the files it points to, in {tiny.resolve()}, are kept.")
    remove_model("tiny", models, [])
    assert not os.path.lexists(models / "checkpoints" / "tiny") and (tiny / "model_index.json").is_file()
    remove_model(str(ink.resolve()), models, [])  # the window gives the path the library lists: the link's target
    assert not os.path.lexists(models / "loras" / "ink.safetensors") and ink.is_file()
    assert scan_library(models) == []


def test_a_dangling_or_looping_link_in_the_models_folder_is_removed_as_a_link(tmp_path):
    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    (models / "loras" / "gone.safetensors").symlink_to(tmp_path / "nowhere" / "x.safetensors")
    (models / "loras" / "loopA.safetensors").symlink_to(models / "loras" / "loopB.safetensors")
    (models / "loras" / "loopB.safetensors").symlink_to(models / "loras" / "loopA.safetensors")
    for name in ("gone", "loopA", "loopB"):
        remove_model(name, models, [])
    assert list((models / "loras").iterdir()) == []


def test_a_model_reached_through_a_linked_sub_folder_outside_is_not_deleted(tmp_path):
    """checkpoints/sub → a folder elsewhere: sub/x's files are not Studio's; a link inside, to inside, is fine."""
    models, elsewhere = tmp_path / "models", tmp_path / "elsewhere"
    outside = sd1(elsewhere / "x.safetensors")
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "sub").symlink_to(elsewhere)
    with pytest.raises(InvalidRequest) as caught:
        what_removing_does("x", models, [])
    assert str(caught.value) == (
        f"{outside.resolve()}, reached through the link {models / 'checkpoints' / 'sub'} (to {elsewhere.resolve()}), "
        f"is outside Studio's models folder {models.resolve()}; Studio deletes only files inside it. Remove the "
        "link, or delete the files there yourself.")
    with pytest.raises(InvalidRequest, match="is outside Studio's models folder"):
        remove_model("x", models, [])
    with pytest.raises(InvalidRequest, match="is outside Studio's models folder"):
        removal_words(scan_library(models)[0], models)
    assert outside.is_file()
    (models / "checkpoints" / "sub").unlink()
    inside = sd1(models / "kept" / "y.safetensors")
    (models / "checkpoints" / "sub").symlink_to(models / "kept")
    remove_model("y", models, [])  # its files are inside the models folder, whichever way they were found
    assert not inside.exists()


def test_a_linked_folder_or_file_is_unlinked_never_deleted(tmp_path):
    models, other = tmp_path / "models", tmp_path / "other"
    models.mkdir()
    tiny = diffusers_folder(other / "tiny-sd")
    single = lora(tmp_path / "single.safetensors")
    theirs = lora(other / "loras" / "theirs.safetensors")
    for linked in ([tiny], [single], [other]):
        item, kept = remove_model(str(linked[0]), models, linked)
        assert kept == [] and item.path == linked[0]
    with pytest.raises(InvalidRequest, match="does not delete other tools' files"):
        remove_model("tiny-sd", models, [other])
    assert (tiny / "model_index.json").is_file() and single.is_file() and theirs.is_file()
