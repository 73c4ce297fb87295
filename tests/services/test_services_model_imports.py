"""Importing models into the library and linking other folders: checked by content, never copied twice."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from model_files import RunsCodeOnLoad, controlnet, diffusers_folder, esrgan, lora, sd1, write
from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_library import IMPORTS_FILE, scan_library
from studio.services.model_imports import import_model
from studio.services.model_links import link_paths


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
    evil.write_bytes(pickle.dumps(RunsCodeOnLoad(sentinel)))
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


def test_studio_own_models_folder_or_a_part_of_it_is_not_linked_and_a_linked_one_is_not_linked_twice(tmp_path):
    models = tmp_path / "models"
    import_model(lora(tmp_path / "ink.safetensors"), models)
    with pytest.raises(InvalidRequest) as own:
        link_paths(models, [], models)
    assert str(own.value) == f"{models} is Studio's own models folder; its models are in the library already, so " \
                             "there is nothing to link."
    with pytest.raises(InvalidRequest, match=r"is inside Studio's models folder .*; there is nothing to link\.$"):
        link_paths(models / "loras" / "ink.safetensors", [], models)
    other = lora(tmp_path / "a1111" / "Lora" / "x.safetensors").parent.parent
    assert link_paths(other, [other], models).links == [other]


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


def test_linking_or_importing_a_loop_of_symbolic_links_says_it_is_one(tmp_path):
    """`studio models link …/loopA` said "There is no file or folder at …/loopA."."""
    loop_a, loop_b = tmp_path / "loopA", tmp_path / "loopB"
    loop_b.symlink_to(loop_a)
    loop_a.symlink_to(loop_b)
    expected = (f"{loop_a} is a loop of symbolic links (it leads back to itself), so it cannot be read; fix or delete "
                "the link.")
    with pytest.raises(InvalidRequest) as refused:
        link_paths(loop_a, [])
    assert str(refused.value) == expected
    with pytest.raises(InvalidRequest) as refused:
        import_model(loop_a, tmp_path / "models")
    assert str(refused.value) == expected
    with pytest.raises(InvalidRequest, match="There is no file or folder at"):
        link_paths(tmp_path / "nothing", [])
