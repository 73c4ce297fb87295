"""Importing models into the library, linking other folders, removing: checked by content, nothing lost."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from model_files import controlnet, diffusers_folder, esrgan, lora, sd1, write
from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_library import IMPORTS_FILE, scan_library
from studio.services.model_imports import import_model, link_folder, remove_model


class _Sentinel:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.path,))


def test_a_checkpoint_goes_to_checkpoints_and_remembers_where_it_came_from(tmp_path):
    models = tmp_path / "models"
    source = sd1(tmp_path / "downloads" / "dreamy.safetensors")
    seen = []
    result = import_model(source, models, progress=lambda done, total: seen.append((done, total)))
    target = models / "checkpoints" / "dreamy.safetensors"
    assert result.copied and result.item.path == target and target.read_bytes() == source.read_bytes()
    assert seen[-1] == (source.stat().st_size,) * 2
    assert source.exists()  # a copy: the person's file stays where it was
    item = scan_library(models)[0]
    assert item.source == f"imported from {source.resolve()}"
    assert not list(models.rglob(".importing-*"))


def test_a_file_with_a_long_legal_name_is_imported(tmp_path):
    name = "猫" * 80 + ".safetensors"  # 252 bytes: a temporary name with more around it would pass 255
    result = import_model(sd1(tmp_path / name), tmp_path / "models")
    assert result.copied and result.item.path.name == name
    assert not list((tmp_path / "models").rglob(".importing-*"))


@pytest.mark.parametrize(("make", "folder"), [(lora, "loras"), (esrgan, "upscalers"), (controlnet, "controlnet")])
def test_each_kind_goes_to_its_folder(tmp_path, make, folder):
    source = make(tmp_path / "file.safetensors")
    result = import_model(source, tmp_path / "models")
    assert result.item.path == tmp_path / "models" / folder / "file.safetensors"


def test_a_diffusers_folder_is_copied_whole(tmp_path):
    source = diffusers_folder(tmp_path / "tiny-sd")
    result = import_model(source, tmp_path / "models")
    assert result.item.is_folder and (tmp_path / "models" / "checkpoints" / "tiny-sd" / "model_index.json").is_file()


def test_a_model_named_as_one_already_in_the_library_is_refused_and_an_ambiguous_name_is_not_guessed(tmp_path):
    from studio.core.models import resolve_model

    models = tmp_path / "models"
    import_model(sd1(tmp_path / "a" / "sd1.safetensors"), models)
    with pytest.raises(InvalidRequest) as err:
        import_model(diffusers_folder(tmp_path / "b" / "sd1"), models)
    existing = models / "checkpoints" / "sd1.safetensors"
    assert str(err.value) == f"The library already has an SD 1.x named sd1 ({existing}); rename the one you are " \
                             "importing first."
    diffusers_folder(models / "elsewhere" / "sd1")  # put there by hand
    with pytest.raises(InvalidRequest, match=r"^2 models are named 'sd1' .*give the one you mean by its path\.$"):
        resolve_model("sd1", models)


def test_the_same_file_twice_is_not_copied_again(tmp_path):
    models = tmp_path / "models"
    first = sd1(tmp_path / "a" / "dreamy.safetensors")
    import_model(first, models)
    again = sd1(tmp_path / "b" / "renamed.safetensors")
    result = import_model(again, models)
    assert not result.copied and "already in the library" in result.note
    assert sorted(p.name for p in (models / "checkpoints").iterdir()) == ["dreamy.safetensors"]


@pytest.mark.parametrize("make", [sd1, lora, esrgan, controlnet])
def test_the_same_file_of_any_kind_is_found_under_its_own_name_and_under_another(tmp_path, make):
    # A LoRA's was hashed as a checkpoint's (AutoV2) and compared with the library's LoRA hash (AutoV3): never equal,
    # so the same file again was "a different ink.safetensors", and under another name it was copied a second time.
    models, cache = tmp_path / "models", tmp_path / "hashes.json"
    source = make(tmp_path / "a" / "ink.safetensors")
    first = import_model(source, models, hash_cache=cache)
    again = import_model(source, models, hash_cache=cache)
    renamed = import_model(make(tmp_path / "b" / "ink-again.safetensors"), models, hash_cache=cache)
    for result in (again, renamed):
        assert not result.copied and result.item.path == first.item.path
        assert result.note.endswith(f"is already in the library as {first.item.path}.")
    assert [p.name for p in first.item.path.parent.iterdir()] == ["ink.safetensors"]


def test_a_different_file_with_a_taken_name_is_refused(tmp_path):
    models = tmp_path / "models"
    import_model(sd1(tmp_path / "a" / "dreamy.safetensors"), models)
    with pytest.raises(InvalidRequest, match="already has a different dreamy.safetensors"):
        import_model(sd1(tmp_path / "b" / "dreamy.safetensors", fill=3), models)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt", ".pt", ".bin"])
def test_a_pickle_is_refused_and_never_runs(tmp_path, suffix):
    sentinel = tmp_path / "ran"
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(pickle.dumps(_Sentinel(sentinel)))
    with pytest.raises(ModelError, match="pickle") as err:
        import_model(evil, tmp_path / "models")
    assert "studio convert-weights" in str(err.value)
    assert not sentinel.exists() and not (tmp_path / "models").exists()


def test_a_corrupt_file_and_a_plain_folder_are_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelError, match="corrupt"):
        import_model(bad, tmp_path / "models")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidRequest, match="link it instead"):
        import_model(tmp_path / "plain", tmp_path / "models")
    with pytest.raises(InvalidRequest, match="no file or folder"):
        import_model(tmp_path / "missing.safetensors", tmp_path / "models")


def test_a_file_of_no_kind_studio_knows_is_refused_naming_the_kinds_it_can_import(tmp_path):
    odd = write(tmp_path / "odd.safetensors", {"some.other.network.weight": (4, 4)})
    with pytest.raises(ModelError) as err:
        import_model(odd, tmp_path / "models")
    assert str(err.value) == ("odd.safetensors is a safetensors file, but not a kind of model Studio knows "
                              "(checkpoint, LoRA, VAE, ControlNet, upscaler, IP-Adapter, embedding or style weights).")
    assert not (tmp_path / "models").exists()


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


def test_a_pickle_checkpoint_is_converted_then_imported_tensors_only(tmp_path):
    import torch

    from studio.services.model_imports import convert_and_import

    models = tmp_path / "models"
    checkpoint = tmp_path / "ink.ckpt"
    torch.save({"state_dict": {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 8),
                               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.ones(8, 4)}},
               checkpoint)
    result = convert_and_import(checkpoint, models)
    assert result.copied and result.item.path == models / "loras" / "ink.safetensors"
    assert result.item.kind == "lora"
    assert scan_library(models)[0].source == f"imported from {checkpoint.resolve()}"
    assert not (models / ".incoming").exists()


def test_a_converted_import_gets_the_mode_a_copy_gets(tmp_path):
    # models import X.pt --convert filed the model 0600 (owner only), where a copied model gets the umask's 0644.
    import os
    import stat

    import torch

    from studio.services.model_imports import convert_and_import

    checkpoint = tmp_path / "ink.pt"
    torch.save({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 8),
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.ones(8, 4)}, checkpoint)
    old_umask = os.umask(0o022)
    try:
        result = convert_and_import(checkpoint, tmp_path / "models")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(result.item.path.stat().st_mode) == 0o644


def test_a_checkpoint_with_code_is_refused_by_the_conversion_and_never_runs(tmp_path):
    from studio.core.errors import StudioError
    from studio.services.model_imports import convert_and_import

    import torch

    sentinel = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "callback": _Sentinel(sentinel)}, evil)  # as torch writes them
    with pytest.raises(StudioError, match="contains code or objects"):
        convert_and_import(evil, tmp_path / "models")
    assert not sentinel.exists()
    assert not list((tmp_path / "models").rglob("*.safetensors"))


def test_a_model_in_a_kind_folder_that_is_a_symlink_is_removed_like_any_other(tmp_path):
    """People move checkpoints/ to another drive and link it back: its models are still Studio's to remove."""
    models, elsewhere = tmp_path / "models", tmp_path / "big-drive" / "checkpoints"
    elsewhere.mkdir(parents=True)
    models.mkdir()
    (models / "checkpoints").symlink_to(elsewhere)
    import_model(sd1(tmp_path / "dreamy.safetensors"), models)
    item, links = remove_model("dreamy", models, [])
    assert item.name == "dreamy" and links == [] and not (elsewhere / "dreamy.safetensors").exists()


def test_ctrl_c_while_copying_leaves_no_hidden_partial_file(tmp_path):
    """Ctrl+C left a multi-GB hidden .importing-* file behind (only OSError cleaned up)."""
    models = tmp_path / "models"
    source = sd1(tmp_path / "dreamy.safetensors")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_model(source, models, progress=interrupt)
    assert not list(models.rglob(".importing-*")) and not (models / "checkpoints" / source.name).exists()


def test_a_partial_file_left_by_a_killed_import_is_removed_at_the_next_import(tmp_path):
    import os
    import time

    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    dead, live = folder / ".importing-0123456789ab", folder / ".importing-ba9876543210"
    dead.write_bytes(b"x" * 1000)
    live.write_bytes(b"x" * 1000)  # another import copying right now: left alone
    old = time.time() - 3600
    os.utime(dead, (old, old))
    import_model(sd1(tmp_path / "dreamy.safetensors"), tmp_path / "models")
    assert not dead.exists() and live.exists()


@pytest.mark.parametrize("make", [sd1, diffusers_folder], ids=["file", "folder"])
def test_a_cancelled_import_stops_between_chunks_and_leaves_nothing(tmp_path, make, monkeypatch):
    import studio.services.model_imports as model_imports
    from studio.core.errors import JobCancelledError

    monkeypatch.setattr(model_imports, "CHUNK", 16)
    source = make(tmp_path / ("dreamy.safetensors" if make is sd1 else "tiny-sd"))
    models = tmp_path / "models"
    asked = []
    with pytest.raises(JobCancelledError, match="cancelled"):
        import_model(source, models, cancelled=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3  # checked chunk by chunk, stopped at once
    assert not list((models / "checkpoints").iterdir())


def test_a_models_folder_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    """A read-only models folder crashed `studio models import` with a PermissionError traceback."""
    real_mkdir = Path.mkdir

    def read_only(self: Path, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 — root can write anywhere: simulated
        if self.name == "checkpoints":
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"^dreamy\.safetensors could not be copied into .*checkpoints: "
                                         r"Permission denied\.$"):
        import_model(sd1(tmp_path / "dreamy.safetensors"), models)


def test_studio_own_models_folder_or_a_part_of_it_is_not_linked_and_a_linked_one_is_not_linked_twice(tmp_path):
    models = tmp_path / "models"
    import_model(lora(tmp_path / "ink.safetensors"), models)
    with pytest.raises(InvalidRequest) as own:
        link_folder(models, [], models)
    assert str(own.value) == f"{models} is Studio's own models folder; its models are in the library already, so " \
                             "there is nothing to link."
    with pytest.raises(InvalidRequest, match=r"is inside Studio's models folder .*; there is nothing to link\.$"):
        link_folder(models / "loras" / "ink.safetensors", [], models)
    other = lora(tmp_path / "a1111" / "Lora" / "x.safetensors").parent.parent
    assert link_folder(other, [other], models) == [other]


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


def test_a_model_inside_a_linked_folder_is_already_in_the_library_and_not_copied(tmp_path):
    """It was copied, and the picker listed the model twice (the copy and the linked one)."""
    models, other = tmp_path / "models", tmp_path / "ComfyUI" / "models"
    folder = diffusers_folder(other / "checkpoints" / "tiny-sd")
    style_lora = lora(other / "loras" / "ink.safetensors")
    single = sd1(tmp_path / "elsewhere" / "one.safetensors")  # a linked file, not a folder
    linked = [other, single]
    for source, link in ((folder, other), (style_lora, other), (single, single)):
        result = import_model(source, models, linked=linked)
        assert not result.copied and result.item.path == source.resolve()
        assert result.note == f"{source.name} is already in the library (linked from {link}); nothing was copied."
    assert not models.exists() or not any(models.rglob("*.safetensors"))
    assert sorted(i.name for i in scan_library(models, linked)) == ["ink", "one", "tiny-sd"]
    assert import_model(folder, models).copied  # without the link it is an ordinary import


def test_a_record_that_cannot_be_written_leaves_the_import_in_place_and_says_why(tmp_path):
    models = tmp_path / "models"
    (models / IMPORTS_FILE).mkdir(parents=True)  # a full disk or a read-only record stand-in, even for root
    result = import_model(sd1(tmp_path / "dreamy.safetensors"), models)
    assert result.copied and result.item.path == models / "checkpoints" / "dreamy.safetensors"
    assert result.unrecorded.startswith(f"dreamy.safetensors is in the library at {result.item.path}, but where it "
                                        f"came from could not be written to {models / IMPORTS_FILE} (")
    assert [item.name for item in scan_library(models)] == ["dreamy"]


def test_a_copy_of_a_linked_model_is_already_in_the_library_and_not_copied(tmp_path):
    """A copy (elsewhere, another name) of a model in a linked folder was copied in and listed twice with one hash:
    only Studio's own folder was compared."""
    import shutil

    models, other = tmp_path / "models", tmp_path / "ComfyUI" / "models"
    folder = diffusers_folder(other / "checkpoints" / "tiny-sd")
    ink = lora(other / "loras" / "ink.safetensors")
    folder_copy = Path(shutil.copytree(folder, tmp_path / "src" / "My Model (v2)"))
    ink_copy = Path(shutil.copy(ink, tmp_path / "src" / "ink-again.safetensors"))
    for copy, original in ((folder_copy, folder), (ink_copy, ink)):
        result = import_model(copy, models, linked=[other])
        assert not result.copied and result.item.path == original
        assert result.note == f"{copy.name} is already in the library as {original}."
    assert not models.exists() or not any(models.rglob("*.safetensors"))


def test_a_converted_import_refused_names_the_checkpoint_and_keeps_what_was_left_out_as_notes(tmp_path):
    # The refusal named the conversion's temporary mo.safetensors, and what the conversion left out was lost.
    import torch

    from studio.core.errors import ModelError
    from studio.services.model_imports import convert_and_import

    checkpoint = tmp_path / "mo.pth"
    torch.save({"model": {"m1": torch.ones(2)}, "optimizer": {"o": torch.ones(1)}}, checkpoint)
    with pytest.raises(ModelError) as caught:
        convert_and_import(checkpoint, tmp_path / "models")
    assert str(caught.value).startswith("mo.pth, converted, is a safetensors file, but not a kind of model")
    assert caught.value.__notes__ == [
        "Wrote only the weights under 'model'; left out the rest of the checkpoint: optimizer."]
    assert list((tmp_path / "models").iterdir()) == []
