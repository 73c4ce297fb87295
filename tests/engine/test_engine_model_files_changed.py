"""The model in use against its files: replaced weights are read again before the next job, so the picture and
its recorded hash are of the files; removed or damaged files leave the job to the copy in memory, said in a note.

A tiny SD pipeline saved as a diffusers folder, copied for each test, loaded through Studio's loader on the CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from studio_testing import DirectContext, tiny_request

import studio.engine.loader as loader
from studio.core.environment import GeneratorEnvironment
from studio.core.errors import ModelError
from studio.core.requests import GenerationRequest
from studio.core.hashing import model_hash
from studio.engine import memory, model_keeping
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.model_keeping import model_files_key

PLENTY = (64 * 2**30, 128 * 2**30)


@pytest.fixture
def model(tiny_model_dir, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny-copy"))


@pytest.fixture
def generator(tmp_path, monkeypatch) -> DiffusersGenerator:
    monkeypatch.setattr(model_keeping, "available_ram", lambda: PLENTY)
    return DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))


def make(generator: DiffusersGenerator, model: Path, context: DirectContext,
         job: GenerationRequest | None = None) -> tuple[np.ndarray, str]:
    ((image, recipe),) = list(generator.generate(job or tiny_request(model, prepared=True), context))
    return np.asarray(image, dtype=np.int16), recipe.model_hash


def unet_weights(model: Path) -> Path:
    return next((model / "unet").glob("*.safetensors"))


def halve_unet(model: Path) -> None:
    """A new version under the same name: a valid file of other weights, the same size."""
    from safetensors.torch import load_file, save_file

    weights = unet_weights(model)
    stat = weights.stat()
    save_file({name: tensor * 0.5 for name, tensor in load_file(weights).items()}, weights)
    # A coarse filesystem clock could give the new file the old time: the stamp must see it anyway.
    weights.touch()
    assert weights.stat().st_mtime_ns != stat.st_mtime_ns


def test_replaced_weights_are_read_again_before_the_next_job_and_its_hash_is_theirs(generator, loads, model,
                                                                                       tmp_path):
    first = DirectContext()
    before, before_hash = make(generator, model, first)
    halve_unet(model)
    context = DirectContext()
    after, after_hash = make(generator, model, context)

    assert loads == ["tiny-copy", "tiny-copy"]
    assert "The model tiny-copy changed on disk; loaded again." in context.notes
    assert not np.array_equal(before, after)
    fresh = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data2", tmp_path / "cache2"))
    assert np.array_equal(after, make(fresh, model, DirectContext())[0])  # what the files now make
    assert after_hash == model_hash(model) != before_hash
    assert len(generator._kept) == 0  # the old copy is not kept for switching back: its files are gone

    again = DirectContext()
    assert np.array_equal(make(generator, model, again)[0], after)
    assert loads == ["tiny-copy"] * 3  # the two generators' loads: unchanged since, it was not read again
    assert not any("changed on disk" in note for note in again.notes)


def test_a_changed_config_is_read_again_too(generator, loads, model):
    make(generator, model, DirectContext())
    config = model / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text())
    config.touch()
    context = DirectContext()
    make(generator, model, context)
    assert loads == ["tiny-copy", "tiny-copy"]
    assert "The model tiny-copy changed on disk; loaded again." in context.notes


def test_a_removed_model_runs_from_memory_with_a_note_and_its_loaded_hash(generator, loads, model):
    before, before_hash = make(generator, model, DirectContext())
    queued = tiny_request(model, prepared=True)  # checked when it was queued, before the folder went
    shutil.rmtree(model)
    context = DirectContext()
    after, after_hash = make(generator, model, context, queued)
    assert np.array_equal(before, after) and after_hash == before_hash
    assert loads == ["tiny-copy"]
    assert ("The model tiny-copy's files were removed since it was loaded; this job's pictures were made from the "
            "copy in memory.") in context.notes


def test_a_kept_model_whose_folder_was_removed_is_switched_back_to_from_memory_with_a_note(generator, loads, model,
                                                                                          tiny_model_dir):
    """As the model in use does: the copy kept in memory is whole, and all there is of the model now."""
    before, before_hash = make(generator, model, DirectContext())
    other = Path(shutil.copytree(tiny_model_dir, model.parent / "other"))
    make(generator, other, DirectContext())  # tiny-copy is kept for switching back
    queued = tiny_request(model, prepared=True)
    shutil.rmtree(model)
    context = DirectContext()
    after, after_hash = make(generator, model, context, queued)
    assert np.array_equal(before, after) and after_hash == before_hash
    assert loads == ["tiny-copy", "other"]  # switched back to, not read again
    assert ("The model tiny-copy's files were removed since it was loaded; this job's pictures were made from the "
            "copy in memory.") in context.notes
    assert [kept.name for kept in generator._kept.models] == ["other"]


def replace_with(path: Path, data: bytes) -> None:
    """Write ``path`` as downloads and copies do: a new file put in its place (the loaded one stays whole)."""
    part = path.with_suffix(".part")
    part.write_bytes(data)
    part.replace(path)


def test_damaged_files_run_from_memory_with_a_note_and_a_mended_model_is_read_again(generator, loads, model,
                                                                                   tiny_model_dir):
    before, before_hash = make(generator, model, DirectContext())
    weights = unet_weights(model)
    replace_with(weights, weights.read_bytes()[:5000])
    context = DirectContext()
    after, after_hash = make(generator, model, context)
    assert np.array_equal(before, after) and after_hash == before_hash
    assert loads == ["tiny-copy"]
    (note,) = [n for n in context.notes if "tiny-copy's files" in n]
    assert note.startswith("The model tiny-copy's files changed since it was loaded and cannot be read: The model ")
    assert weights.name in note and note.endswith("This job's pictures were made from the copy in memory.")

    shutil.rmtree(model)
    shutil.copytree(tiny_model_dir, model)
    halve_unet(model)  # mended, as a new version
    context = DirectContext()
    mended, mended_hash = make(generator, model, context)
    assert loads == ["tiny-copy", "tiny-copy"]
    assert not np.array_equal(before, mended) and mended_hash == model_hash(model)


def test_a_truncated_config_counts_as_damaged(generator, loads, model):
    before, _ = make(generator, model, DirectContext())
    config = model / "unet" / "config.json"
    config.write_text(config.read_text()[:40])  # in place: the config is read once, at loading
    context = DirectContext()
    assert np.array_equal(make(generator, model, context)[0], before)
    assert loads == ["tiny-copy"]
    assert any("cannot be read" in note and "config.json" in note for note in context.notes)


def test_weights_damaged_in_place_run_from_the_copy_in_memory_on_the_cpu(generator, loads, model):
    """The loader copied the weights the file's pages held: cut in place, the file leaves them whole."""
    before, before_hash = make(generator, model, DirectContext())
    weights = unet_weights(model)
    weights.write_bytes(weights.read_bytes()[:5000])  # the same file, cut short
    context = DirectContext()
    after, after_hash = make(generator, model, context)
    assert np.array_equal(before, after) and after_hash == before_hash
    assert loads == ["tiny-copy"]
    assert any(note.startswith("The model tiny-copy's files changed since it was loaded and cannot be read")
               for note in context.notes)


def test_weights_still_pages_of_a_file_damaged_in_place_refuse_the_job_and_a_whole_copy_is_read_again(
        generator, loads, model, tiny_model_dir, monkeypatch):
    """Weights left as pages of the file (safetensors maps it; an offloaded GPU job's): cut in place, they are
    gone too."""
    monkeypatch.setattr(loader, "own_weights", lambda pipe: 0)  # as an offloaded GPU job's CPU weights are
    before, _ = make(generator, model, DirectContext())
    weights = unet_weights(model)
    weights.write_bytes(weights.read_bytes()[:5000])  # the same file, cut short
    with pytest.raises(ModelError, match=r"The model tiny-copy changed on disk and cannot be read: .*"
                                         r"diffusion_pytorch_model.safetensors was rewritten in place"):
        make(generator, model, DirectContext())
    assert generator._model is None  # nothing touches its weights again

    shutil.rmtree(model)
    shutil.copytree(tiny_model_dir, model)
    assert np.array_equal(make(generator, model, DirectContext())[0], before)
    assert loads == ["tiny-copy", "tiny-copy"]


def keep_and_damage(generator: DiffusersGenerator, model: Path, tiny_model_dir: Path,
                    damage) -> tuple[np.ndarray, str, GenerationRequest]:  # noqa: ANN001
    """A picture of ``model``, then ``model`` kept (another model in use) and its unet weights damaged by
    ``damage``; returns the picture, its hash and a job for ``model`` queued before the damage."""
    before, before_hash = make(generator, model, DirectContext())
    make(generator, Path(shutil.copytree(tiny_model_dir, model.parent / "other")), DirectContext())
    queued = tiny_request(model, prepared=True)
    weights = unet_weights(model)
    damage(weights, weights.read_bytes()[:5000])
    return before, before_hash, queued


@pytest.mark.parametrize("damage", [replace_with, Path.write_bytes], ids=["replaced", "cut-in-place"])
def test_a_kept_model_whose_files_were_damaged_is_switched_back_to_from_memory_with_a_note(
        generator, loads, model, tiny_model_dir, damage):
    """As the model in use does: its weights are its own (the loader copied them), so the copy kept is whole."""
    before, before_hash, queued = keep_and_damage(generator, model, tiny_model_dir, damage)
    context = DirectContext()
    after, after_hash = make(generator, model, context, queued)
    assert np.array_equal(before, after) and after_hash == before_hash
    assert loads == ["tiny-copy", "other"]  # switched back to, not read again
    (note,) = [n for n in context.notes if "tiny-copy's files" in n]
    assert note.startswith("The model tiny-copy's files changed since it was loaded and cannot be read: The model ")
    assert unet_weights(model).name in note and note.endswith("This job's pictures were made from the copy in memory.")
    assert [kept.name for kept in generator._kept.models] == ["other"]

    again = DirectContext()  # the model in use now, its files still damaged: from memory again
    assert np.array_equal(make(generator, model, again, queued)[0], before)
    assert loads == ["tiny-copy", "other"] and note in again.notes


def test_a_kept_model_still_pages_of_a_file_damaged_in_place_is_let_go(generator, loads, model, tiny_model_dir,
                                                                       monkeypatch):
    """Weights left as pages of the file (an offloaded GPU job's): cut in place, the copy kept is not whole."""
    monkeypatch.setattr(loader, "own_weights", lambda pipe: 0)
    _, _, queued = keep_and_damage(generator, model, tiny_model_dir, Path.write_bytes)
    with pytest.raises(ModelError, match="tiny-copy"):
        make(generator, model, DirectContext(), queued)
    assert loads == ["tiny-copy", "other", "tiny-copy"]  # read again: the copy kept was let go
    assert all(kept.name != "tiny-copy" for kept in generator._kept.models)


def test_files_changed_while_hashed_give_no_hash_rather_than_another_models(model, monkeypatch, tmp_path):
    from studio.engine.device import select_device

    real = loader.model_hash

    def hash_then_replace(path, cache):  # noqa: ANN001, ANN202
        digest = real(path, cache)
        halve_unet(model)
        return digest

    monkeypatch.setattr(loader, "model_hash", hash_then_replace)
    loaded = loader.load_model(model, select_device("cpu"), tmp_path / "hashes.json", place=False)
    assert loaded.hash == ""


def test_the_stamp_covers_weights_configs_and_tokenizers_and_not_hidden_caches(model):
    (model / ".cache" / "huggingface").mkdir(parents=True)
    (model / ".cache" / "huggingface" / "download.json").write_text("{}")
    (model / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")  # a slow tokenizer's
    names = {Path(path).relative_to(model).as_posix() for path, *_stat in model_files_key(model)}
    assert {"model_index.json", "unet/config.json", "tokenizer/tokenizer.json", "tokenizer/merges.txt",
            unet_weights(model).relative_to(model).as_posix()} <= names
    assert not any(name.startswith(".cache") for name in names)
    assert model_files_key(model / "gone") == ()


def stand_in(model: Path, owned: bool) -> SimpleNamespace:
    """A loaded model as the decision sees it: its name, path, stamp and one module whose weight is a page of
    its unet file (safetensors maps it) or, ``owned``, copied out of it."""
    import torch
    from safetensors.torch import load_file

    module = torch.nn.Module()
    module.weight = torch.nn.Parameter(next(iter(load_file(unet_weights(model)).values())), requires_grad=False)
    if owned:
        memory.own_weights(module)
    return SimpleNamespace(name=model.name, path=model, files_key=model_files_key(model), text2img=module)


def cut_in_place(model: Path) -> None:
    weights = unet_weights(model)
    weights.write_bytes(weights.read_bytes()[:5000])


def cut_and_replaced(model: Path) -> None:
    weights = unet_weights(model)
    replace_with(weights, weights.read_bytes()[:5000])


CHANGES = {"removed": shutil.rmtree, "replaced": halve_unet, "cut-and-replaced": cut_and_replaced,
           "cut-in-place": cut_in_place}


@pytest.mark.parametrize("owned", [True, False], ids=["owned", "pages"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_the_model_in_use_and_a_kept_one_are_told_the_same_by_one_decision(model, change, owned):
    """``note_from_memory`` decides for both: a kept copy is switched back to with the note the model in use
    would give, and let go where the model in use would be read again or refused."""
    from studio.engine.device import select_device
    from studio.engine.model_keeping import KeptModels, note_from_memory

    loaded = stand_in(model, owned)
    CHANGES[change](model)
    files = model_files_key(model)
    try:
        said, refused = note_from_memory(loaded, model, files), None
    except ModelError as exc:
        said, refused = None, exc
    kept = KeptModels()
    kept.keep(SimpleNamespace(**vars(loaded), offloaded=False))
    found, let_go, note = kept.take(model, files, select_device("cpu"))
    assert note == said
    assert (found is None) == (said is None) and len(let_go) == (said is None) and len(kept) == 0

    expected = {"removed": "files were removed", "replaced": None, "cut-and-replaced": "cannot be read: The model",
                "cut-in-place": "cannot be read: The model" if owned else None}[change]
    assert (said is None) if expected is None else expected in said
    assert (refused is not None) == (change == "cut-in-place" and not owned)
    if refused is not None:
        assert f"{unet_weights(model).name} was rewritten in place, so the copy in memory is not whole" in str(refused)
