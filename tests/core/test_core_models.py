"""Finding model folders, refusing pickle formats, and A1111-style model hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import studio.core.hashing as hashing
from studio.core.errors import ModelError
from studio.core.hashing import model_hash
from studio.core.models import check_model_folder, find_models
from model_files import write


def make_model(folder, weights=("unet/diffusion_pytorch_model.safetensors",)):  # noqa: ANN001, ANN201
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    for i, name in enumerate(weights):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".safetensors"):  # a real header: the check reads it
            write(folder / name, {f"weights {i} of {folder.name}": (i + 1,)})
        else:
            (folder / name).write_bytes(f"weights {i} of {folder.name}".encode())
    return folder


# -- find_models ----------------------------------------------------------------------------------

def test_find_models_direct_nested_and_extra(tmp_path):
    root = tmp_path / "models"
    make_model(root / "beta")
    make_model(root / "Alpha")
    make_model(root / "sdxl" / "juggernaut")  # one level down, in a plain folder
    make_model(root / "group" / "deep" / "deeper")  # any depth (ComfyUI people keep sub-folders)
    make_model(root / ".hidden")
    (root / "not-a-model").mkdir()
    (root / "loose.safetensors").write_bytes(b"x")
    extra = make_model(tmp_path / "elsewhere" / "picked")
    missing_extra = tmp_path / "gone"
    found = find_models(root, [extra, missing_extra])
    assert [m.name for m in found] == ["Alpha", "beta", "deeper", "juggernaut", "picked"]  # sorted, any case
    assert all(m.path.is_absolute() for m in found)
    assert found[3].path == (root / "sdxl" / "juggernaut").resolve()


def test_find_models_lists_a_folder_once(tmp_path):
    root = tmp_path / "models"
    model = make_model(root / "one")
    link = tmp_path / "link-to-one"
    link.symlink_to(model)
    found = find_models(root, [model, link])
    assert len(found) == 1 and found[0].path == model.resolve()


def test_find_models_in_a_missing_folder_is_empty(tmp_path):
    assert find_models(tmp_path / "nowhere") == []


# -- check_model_folder ---------------------------------------------------------------------------

def test_check_accepts_safetensors_folders(tmp_path):
    check_model_folder(make_model(tmp_path / "ok"))


def test_check_accepts_pickles_beside_safetensors_and_in_the_safety_checker(tmp_path):
    model = make_model(tmp_path / "both", weights=(
        "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin",
        "safety_checker/pytorch_model.bin"))
    check_model_folder(model)


@pytest.mark.parametrize("name", ["unet/diffusion_pytorch_model.bin", "unet/model.ckpt", "text_encoder/model.pt",
                                  "unet/weights.PTH", "extra/thing.pkl"])
def test_check_refuses_pickle_weights(tmp_path, name):
    model = make_model(tmp_path / "pickled", weights=("vae/diffusion_pytorch_model.safetensors", name))
    with pytest.raises(ModelError) as err:
        check_model_folder(model)
    message = str(err.value)
    assert "pickle" in message and name in message and message.endswith("Convert them to safetensors first.")


def test_check_refuses_a_truncated_or_emptied_weights_file_and_a_model_index_that_is_not_an_object(tmp_path):
    model = make_model(tmp_path / "cut", weights=("unet/diffusion_pytorch_model.safetensors",
                                                  "vae/diffusion_pytorch_model.safetensors"))
    vae = model / "vae" / "diffusion_pytorch_model.safetensors"
    vae.write_bytes(vae.read_bytes()[:-1])
    with pytest.raises(ModelError, match=r"^The model cut has a damaged weights file, vae/diffusion_pytorch_model\."
                                         r"safetensors: .*truncated"):
        check_model_folder(model)
    vae.write_bytes(b"")
    with pytest.raises(ModelError, match="damaged weights file, vae/diffusion_pytorch_model.safetensors"):
        check_model_folder(model)
    listed = make_model(tmp_path / "listed")
    (listed / "model_index.json").write_text("[1]")
    with pytest.raises(ModelError) as err:
        check_model_folder(listed)
    assert str(err.value) == ("The model_index.json of the model listed could not be read as a JSON object of its "
                              "components.")


def test_check_refuses_a_folder_whose_component_has_no_weights_as_an_unfinished_download(tmp_path):
    model = make_model(tmp_path / "half", weights=("text_encoder/model.safetensors",))
    (model / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                        "unet": ["diffusers", "UNet2DConditionModel"],
                                                        "text_encoder": ["transformers", "CLIPTextModel"],
                                                        "safety_checker": [None, None]}))
    (model / "unet").mkdir()
    (model / "unet" / "config.json").write_text('{"_class_name": "UNet2DConditionModel"}')  # weights never came
    (model / "text_encoder" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="^The model half has no weights for its unet; if it is a download that "
                                         "did not finish, download it again to resume; otherwise copy the whole "
                                         r"folder again\.$"):
        check_model_folder(model)
    write(model / "unet" / "diffusion_pytorch_model.safetensors", {"w": (1,)})
    check_model_folder(model)


@pytest.mark.parametrize(("broken", "message"), [
    ("scheduler/scheduler_config.json", "is missing scheduler/scheduler_config.json, which its scheduler is loaded "
                                        "from; if it is a download that did not finish, download it again to "
                                        "resume; otherwise copy the whole folder again."),
    ("tokenizer", "is missing tokenizer/tokenizer.json, which its tokenizer is loaded from"),
    ("unet/config.json", "is missing unet/config.json, which its unet is loaded from"),
    ("vae/config.json=", "has a damaged vae/config.json: it is not a JSON object."),
    ("vae/config.json={}", "has a damaged vae/config.json: it does not name the vae's class (_class_name), as every "
                           "config diffusers writes does."),
])
def test_check_refuses_a_folder_whose_component_has_no_config_in_one_sentence(tmp_path, broken, message):
    """A folder with weights but a component diffusers cannot start loading (what a copy that stopped early
    leaves) is refused by name, not with diffusers' "Error no file named ..." halfway through a load."""
    model = make_model(tmp_path / "broken", weights=("unet/diffusion_pytorch_model.safetensors",
                                                     "vae/diffusion_pytorch_model.safetensors"))
    (model / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "safety_checker": [None, None]}))
    for name, config in (("unet/config.json", {"_class_name": "UNet2DConditionModel"}),
                         ("vae/config.json", {"_class_name": "AutoencoderKL"}),
                         ("scheduler/scheduler_config.json", {"_class_name": "EulerDiscreteScheduler"}),
                         ("tokenizer/vocab.json", {})):
        (model / name).parent.mkdir(exist_ok=True)
        (model / name).write_text(json.dumps(config))
    check_model_folder(model)
    target = model / broken.partition("=")[0]
    if "=" in broken:  # what the file then holds: cut short, or a JSON object that names no class
        target.write_text(broken.partition("=")[2] or "{cut")
    elif target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(ModelError) as err:
        check_model_folder(model)
    assert str(err.value).startswith(f"The model broken {message}")
    assert [entry.name for entry in find_models(tmp_path)] == []  # so the model picker does not offer it


# -- model_hash -----------------------------------------------------------------------------------

def test_hash_of_a_file_is_sha256_first_10(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(os.urandom(3 * (1 << 20) + 17))  # bigger than one read chunk
    assert model_hash(weights) == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]


def test_hash_of_a_folder_is_stable_and_depends_only_on_weights(tmp_path):
    model = make_model(tmp_path / "m", weights=("unet/a.safetensors", "vae/b.safetensors"))
    first = model_hash(model)
    assert len(first) == 10 and all(c in "0123456789abcdef" for c in first)
    assert model_hash(model) == first
    (model / "unet" / "config.json").write_text("{}")  # configs do not count
    (model / "README.md").write_text("hello")
    assert model_hash(model) == first
    (model / "vae" / "b.safetensors").write_bytes(b"other weights")
    assert model_hash(model) != first


def test_hash_of_a_folder_does_not_depend_on_where_it_is(tmp_path):
    a = make_model(tmp_path / "a" / "same", weights=("unet/x.safetensors",))
    b = make_model(tmp_path / "b" / "same", weights=("unet/x.safetensors",))
    assert model_hash(a) == model_hash(b)
    (b / "unet" / "x.safetensors").rename(b / "unet" / "y.safetensors")  # same bytes, other file name
    assert model_hash(a) != model_hash(b)


def test_hash_cache_is_used_and_refreshed_when_the_file_changes(tmp_path, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"version 1")
    cache = tmp_path / "cache" / "hashes.json"
    calls = []
    real = hashing.file_sha256

    def counting(path, chunk=1 << 20):  # noqa: ANN001, ANN202
        calls.append(path)
        return real(path, chunk)

    monkeypatch.setattr(hashing, "file_sha256", counting)
    first = model_hash(weights, cache)
    assert len(calls) == 1 and cache.is_file()
    assert hashlib.sha256(b"version 1").hexdigest() in json.loads(cache.read_text()).values()
    assert model_hash(weights, cache) == first
    assert len(calls) == 1  # answered from the cache
    weights.write_bytes(b"version 2, longer")
    second = model_hash(weights, cache)
    assert second == hashlib.sha256(b"version 2, longer").hexdigest()[:10] != first
    assert len(calls) == 2


def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"abc")
    cache = tmp_path / "hashes.json"
    cache.write_text("{broken json")
    assert model_hash(weights, cache) == hashlib.sha256(b"abc").hexdigest()[:10]
    assert json.loads(cache.read_text())  # valid again


def test_hash_of_the_tiny_model_matches_the_loader(tiny_model_dir):
    # The folder hash covers every safetensors file of the saved pipeline.
    files = sorted(p for p in tiny_model_dir.rglob("*.safetensors"))
    assert len(files) == 3
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(tiny_model_dir).as_posix()}:{hashlib.sha256(f.read_bytes()).hexdigest()}\n"
                      .encode())
    assert model_hash(tiny_model_dir) == digest.hexdigest()[:10]


def test_lora_hash_is_a1111s_autov3_and_ignores_header_edits(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    from studio.core.hashing import lora_hash

    path = tmp_path / "ink.safetensors"
    tensors = {"lora_unet_x.lora_down.weight": np.arange(12, dtype=np.float16).reshape(3, 4)}
    save_file(tensors, str(path), metadata={"ss_output_name": "ink"})
    raw = path.read_bytes()
    header = int.from_bytes(raw[:8], "little")
    expected = hashlib.sha256(raw[8 + header:]).hexdigest()[:12]  # what A1111 writes in "Lora hashes"
    assert lora_hash(path) == expected and len(expected) == 12
    save_file(tensors, str(path), metadata={"ss_output_name": "renamed", "note": "edited"})
    assert lora_hash(path) == expected  # new metadata, same tensors, same hash


def test_a_model_named_that_is_another_kind_or_cannot_be_used_is_said_so(tmp_path):
    # It said "No model file or folder named 'ink' was found" of a LoRA `studio models list` shows as ink.
    from model_files import controlnet, esrgan, lora

    from studio.core.errors import InvalidRequest
    from studio.core.models import resolve_model

    models = tmp_path / "models"
    lora(models / "loras" / "ink.safetensors")
    controlnet(models / "controlnet" / "canny.safetensors")
    esrgan(models / "upscalers" / "4x.safetensors")
    (models / "vae" / "soft").mkdir(parents=True)
    (models / "vae" / "soft" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    write(models / "vae" / "soft" / "diffusion_pytorch_model.safetensors", {"decoder.conv_in.weight": (1,)})
    (models / "old.ckpt").write_bytes(b"\x80\x02}q\x00.")
    said = {}
    for name in ("ink", "canny", "soft", "4x", "old", "nothing"):
        with pytest.raises(InvalidRequest) as refusal:
            resolve_model(name, models)
        said[name] = str(refusal.value)
    assert said["ink"] == "ink is a LoRA, not a model to generate with; use --lora ink."
    assert said["canny"] == "canny is a ControlNet (SD 1.x), not a model to generate with; use --control canny IMAGE."
    assert said["soft"] == "soft is a VAE, not a model to generate with; use --vae soft."
    assert said["4x"].startswith("4x is an Upscaler") and said["4x"].endswith(", not a model to generate with.")
    assert "pickle" in said["old"]
    assert said["nothing"] == f"No model file or folder named 'nothing' was found (looked in {models})."


def test_a_folders_files_are_listed_as_rglob_finds_them_with_their_sizes(tmp_path):
    """The one listing a model folder's checks and size share: files in rglob's order (the sentences naming files
    keep it), links to files followed, links to folders not, dangling links left out."""
    from studio.core.paths import files_under

    model = make_model(tmp_path / "m", weights=("unet/a.safetensors", "vae/b.bin", "unet/sub/c.safetensors"))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "far.safetensors").write_bytes(b"x" * 5)
    os.symlink(tmp_path / "outside" / "far.safetensors", model / "linked.safetensors")
    os.symlink(tmp_path / "outside", model / "linked-folder")
    os.symlink(tmp_path / "gone", model / "dangling.safetensors")
    listed = files_under(model)
    assert [path for path, _ in listed] == [p for p in model.rglob("*") if p.is_file()]
    assert dict(listed)[model / "linked.safetensors"] == 5
    assert all(size == path.stat().st_size for path, size in listed)
    assert files_under(tmp_path / "nowhere") == []


def test_a_model_folders_checks_look_the_folder_up_once(tmp_path, monkeypatch):
    """The checks looked the folder up three times (there? a special file? a file?) and, given the model_index.json a
    scan had just read, looked that up again too; one look-up tells the three, and an index given was there."""
    from pathlib import Path

    from studio.core.paths import files_under

    model = make_model(tmp_path / "m")
    index = json.loads((model / "model_index.json").read_text(encoding="utf-8"))
    files = files_under(model)
    looks: list[Path] = []
    stat = Path.stat

    def counting_stat(self: Path, *args, **kwargs) -> os.stat_result:  # noqa: ANN002, ANN003
        looks.append(self)
        return stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", counting_stat)
    assert check_model_folder(model, index, files) == index
    assert looks.count(model) == 1 and model / "model_index.json" not in looks
    looks.clear()
    check_model_folder(model)  # on its own it still finds its model_index.json
    assert looks.count(model) == 1 and model / "model_index.json" in looks


def test_a_model_that_is_a_loop_of_symbolic_links_is_said_to_be_one(tmp_path, monkeypatch):
    """`--model loopA` (loopA → loopB → loopA in checkpoints/) said "No model file or folder named 'loopA' was
    found", by name and by path alike."""
    from studio.core.errors import InvalidRequest
    from studio.core.models import resolve_model

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    loop_a, loop_b = models / "checkpoints" / "loopA", models / "checkpoints" / "loopB"
    loop_b.symlink_to(loop_a)
    loop_a.symlink_to(loop_b)
    monkeypatch.chdir(tmp_path)
    relative = Path("models/checkpoints/loopB")  # a path from where the command runs
    for value, named in (("loopA", loop_a), (str(loop_a), loop_a), (str(relative), relative)):
        with pytest.raises(InvalidRequest) as refusal:
            resolve_model(value, models)
        assert str(refusal.value) == (f"{named} is a loop of symbolic links (it leads back to itself), so it cannot "
                                      "be read; fix or delete the link.")
    with pytest.raises(InvalidRequest, match="No model file or folder named 'loop' was found"):
        resolve_model("loop", models)


def test_a_loop_is_looked_for_only_where_the_library_reads_models(tmp_path):
    """The search for a loop walked every folder of the models folder and of each linked one at any depth: an
    A1111 folder's venv and outputs too (thousands of folders). It looks where the scan does, as deep."""
    from studio.core.errors import InvalidRequest
    from studio.core.model_library import MAX_DEPTH
    from studio.core.models import resolve_model

    models, webui = tmp_path / "models", tmp_path / "sd-webui"
    (models / "checkpoints").mkdir(parents=True)
    for folder in ("models/Stable-diffusion", "models/Lora", "venv/lib", "outputs"):
        (webui / folder).mkdir(parents=True)
    for place, name in ((webui / "venv" / "lib", "inVenv"), (webui / "outputs", "inOutputs"),
                        (webui / "models" / "Stable-diffusion", "inModels")):
        (place / name).symlink_to(place / name)
    deep = models.joinpath(*[f"d{i}" for i in range(MAX_DEPTH + 1)])
    deep.mkdir(parents=True)
    (deep / "tooDeep").symlink_to(deep / "tooDeep")
    with pytest.raises(InvalidRequest, match="is a loop of symbolic links"):
        resolve_model("inModels", models, [webui])
    for name in ("inVenv", "inOutputs", "tooDeep"):
        with pytest.raises(InvalidRequest, match=f"No model file or folder named '{name}' was found"):
            resolve_model(name, models, [webui])
