"""The real model loader: what it loads, and everything it must refuse without running any code."""

from __future__ import annotations

import json
import logging
import pickle
import re
import shutil
import threading
from pathlib import Path

import pytest
import torch

from studio.core.errors import ModelError
from studio.core.hashing import model_hash
from studio.core.pipeline_classes import missing_class_problem
from studio.engine.device import select_device
from studio.engine.loader import load_model


@pytest.fixture(scope="module")
def cpu():
    return select_device("cpu")


@pytest.fixture
def no_torch_load(monkeypatch):
    """Fail loudly if anything reaches torch.load (the pickle reader) while loading."""
    calls = []

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args)
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)
    return calls


class _Payload:
    """Unpickling this creates ``marker``: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_loads_a_diffusers_folder(tiny_model_dir, cpu, tmp_path, no_torch_load):
    cache = tmp_path / "hashes.json"
    model = load_model(tiny_model_dir, cpu, cache)
    assert model.name == tiny_model_dir.name
    assert model.path == tiny_model_dir.resolve()
    assert model.family == "sd"
    assert model.hash == model_hash(tiny_model_dir) and len(model.hash) == 10
    assert cache.is_file()  # the hash was cached for next time
    assert model.base_scheduler_config["_class_name"] == "EulerDiscreteScheduler"
    assert model.text2img.unet.device.type == "cpu"
    # The img2img pipeline shares the loaded components instead of loading them again.
    img2img = model.pipeline(img2img=True)
    assert img2img is not model.text2img
    assert img2img.unet is model.text2img.unet
    assert model.pipeline(img2img=True) is img2img
    assert model.pipeline(img2img=False) is model.text2img
    assert no_torch_load == []



def test_loading_a_folder_reads_its_model_index_once(tiny_model_dir, cpu, monkeypatch):
    """The loader read model_index.json again right after the folder's checks had read and parsed it."""
    reads = []
    read_text = Path.read_text

    def counting_read_text(self: Path, *args, **kwargs) -> str:  # noqa: ANN002, ANN003
        if self.name == "model_index.json":
            reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read_text)
    model = load_model(tiny_model_dir, cpu)
    assert model.text2img.unet is not None and model.base_scheduler_config["_class_name"] == "EulerDiscreteScheduler"
    assert reads == [tiny_model_dir / "model_index.json"]


def test_the_model_is_hashed_beside_its_load_and_only_the_metadata_waits_for_it(tiny_model_dir, cpu, tmp_path,
                                                                                monkeypatch):
    """Hashing reads the whole file (2-7 GB): the first load of every model used to wait for it."""
    import studio.engine.loader as loader

    started, release = threading.Event(), threading.Event()

    def slow_hash(path: Path, cache: Path | None) -> str:
        started.set()
        assert release.wait(30)
        return model_hash(path, cache)

    monkeypatch.setattr(loader, "model_hash", slow_hash)
    model = load_model(tiny_model_dir, cpu, tmp_path / "hashes.json")  # returns with the hash still running
    assert started.wait(10) and not release.is_set()
    assert model.text2img.unet is not None and not model.hashing.done()
    heard: list[str] = []
    waiting = threading.Thread(target=lambda: heard.append(model.hash))  # as the first picture's metadata
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and not heard
    release.set()
    waiting.join(30)
    assert heard == [model_hash(tiny_model_dir)] and model.hash == heard[0]


def test_a_model_that_cannot_be_read_for_its_hash_has_none(tiny_model_dir, cpu, monkeypatch, caplog):
    import studio.engine.loader as loader

    def unreadable(path: Path, cache: Path | None) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(loader, "model_hash", unreadable)
    with caplog.at_level(logging.WARNING, logger="studio.core.hashing"):
        model = load_model(tiny_model_dir, cpu)
        assert model.hash == ""
    assert "Could not hash" in caplog.text and "Permission denied" in caplog.text

def test_a_folder_with_only_pickle_weights_is_refused(tiny_model_dir, cpu, tmp_path, no_torch_load):
    model = copy_model(tiny_model_dir, tmp_path / "pickled")
    for weights in list(model.rglob("*.safetensors")):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    message = str(err.value)
    assert "pickle" in message
    assert "safetensors" in message
    assert "diffusion_pytorch_model.bin" in message or "model.bin" in message
    assert no_torch_load == []


def test_one_pickle_component_beside_safetensors_ones_is_refused(tiny_model_dir, cpu, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "mixed")
    unet = model / "unet" / "diffusion_pytorch_model.safetensors"
    unet.rename(unet.with_suffix(".ckpt"))
    with pytest.raises(ModelError, match="pickle") as err:
        load_model(model, cpu)
    assert "unet" in str(err.value)


def test_a_pickle_in_the_safety_checker_is_ignored(tiny_model_dir, cpu, tmp_path):
    """The safety checker is never loaded, so its weight format does not block the model."""
    model = copy_model(tiny_model_dir, tmp_path / "with-checker")
    (model / "safety_checker").mkdir()
    (model / "safety_checker" / "pytorch_model.bin").write_bytes(b"not loaded")
    assert load_model(model, cpu).name == "with-checker"


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin"])
def test_a_single_pickle_checkpoint_is_refused(cpu, tmp_path, suffix):
    marker = tmp_path / "executed"
    checkpoint = tmp_path / f"model{suffix}"
    checkpoint.write_bytes(evil_pickle(marker))
    with pytest.raises(ModelError, match="pickle") as err:
        load_model(checkpoint, cpu)
    assert checkpoint.name in str(err.value)
    assert not marker.exists()


def test_a_corrupt_single_file_is_refused_with_a_clear_sentence(cpu, tmp_path):
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="corrupt") as err:
        load_model(single, cpu)
    assert "model.safetensors" in str(err.value)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt", ".pt", ".bin", ".pth"])
def test_a_pickle_is_refused_by_content_whatever_its_name(cpu, tmp_path, suffix, no_torch_load):
    marker = tmp_path / "executed"
    disguised = tmp_path / f"model{suffix}"
    disguised.write_bytes(evil_pickle(marker))
    with pytest.raises(ModelError, match="pickle") as err:
        load_model(disguised, cpu)
    assert "studio convert-weights" in str(err.value)
    assert not marker.exists() and no_torch_load == []


def test_a_folder_without_model_index_is_refused(tiny_model_dir, cpu, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "no-index")
    (model / "model_index.json").unlink()
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    assert str(err.value) == f"{model} is not a diffusers model folder (it has no model_index.json)."


def test_a_missing_model_is_refused(cpu, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nowhere", cpu)


def test_an_unreadable_model_index_is_refused(tiny_model_dir, cpu, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "bad-index")
    (model / "model_index.json").write_text("{not json")
    with pytest.raises(ModelError, match="model_index.json of the model bad-index could not be read"):
        load_model(model, cpu)


def test_the_pickle_payload_really_runs_when_unpickled(tmp_path):
    """Control for the test below: this payload does create its marker when unpickled."""
    marker = tmp_path / "control-marker"
    pickle.loads(evil_pickle(marker))  # noqa: S301 - deliberately, to prove the payload works
    assert marker.exists()


@pytest.mark.parametrize("component", ["unet", "vae", "text_encoder"])
def test_a_pickle_renamed_to_safetensors_fails_without_being_unpickled(tiny_model_dir, cpu, tmp_path, component,
                                                                       no_torch_load):
    marker = tmp_path / "executed"
    model = copy_model(tiny_model_dir, tmp_path / f"disguised-{component}")
    (weights,) = (model / component).glob("*.safetensors")
    weights.write_bytes(evil_pickle(marker))
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    assert str(err.value).startswith(f"The model disguised-{component} has a damaged weights file")
    assert "\n" not in str(err.value)
    assert not marker.exists()
    assert no_torch_load == []


def test_a_model_index_naming_a_missing_component_is_refused(tiny_model_dir, cpu, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "no-vae")
    shutil.rmtree(model / "vae")
    with pytest.raises(ModelError, match="^The model no-vae has no weights for its vae; if it is a download that "
                                         "did not finish, download it again to resume; otherwise copy the whole "
                                         r"folder again\.$"):
        load_model(model, cpu)
    shutil.copytree(tiny_model_dir / "vae", model / "vae")
    (model / "unet" / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"^The model no-vae has a damaged unet/config\.json: it is not a JSON "
                                         r"object\.$"):
        load_model(model, cpu)


def test_a_model_missing_its_scheduler_config_is_refused_in_one_studio_sentence(tiny_model_dir, cpu, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "no-scheduler")
    shutil.rmtree(model / "scheduler")
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    assert str(err.value) == ("The model no-scheduler is missing scheduler/scheduler_config.json, which its scheduler "
                              "is loaded from; if it is a download that did not finish, download it again to "
                              "resume; otherwise copy the whole folder again.")



def test_a_folder_whose_parts_do_not_go_together_is_refused_in_one_studio_sentence(tiny_model_dir, cpu, tmp_path):
    """A class model_index.json names that diffusers lacks, or a unet config of another model than its weights,
    ended in diffusers' own text ("`diffusers` has no class …", "Cannot load  because conv_in.bias expected …")."""
    model = copy_model(tiny_model_dir, tmp_path / "mixed")
    index = json.loads((model / "model_index.json").read_text(encoding="utf-8"))
    original = dict(index)
    index["scheduler"] = ["diffusers", "NopeScheduler"]
    (model / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    assert str(err.value) == ("The model mixed names the class NopeScheduler for its scheduler in model_index.json, "
                              "which diffusers does not have; the folder may mix files of two models.")
    assert missing_class_problem(model) == str(err.value)  # what the listing says of it, before loading
    (model / "model_index.json").write_text(json.dumps(original), encoding="utf-8")
    (model / "unet" / "config.json").write_text('{"_class_name": "UNet2DConditionModel"}')  # SD's default sizes
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    assert str(err.value) == ("The model mixed's unet does not fit its config (conv_in.bias is [8] in the weights, "
                              "[320] by the config); the folder may mix files of two models.")


def test_a_folder_whose_model_index_leaves_out_parts_says_which(tiny_model_dir, cpu, tmp_path):
    """An index naming only its unet was offered and failed with diffusers' text ("Pipeline <class …> expected
    ['feature_extractor', …, 'vae'], but only {'unet'} were passed.")."""
    model = copy_model(tiny_model_dir, tmp_path / "partial")
    index = json.loads((model / "model_index.json").read_text(encoding="utf-8"))
    kept = {key: value for key, value in index.items() if key.startswith("_") or key == "unet"}
    (model / "model_index.json").write_text(json.dumps(kept), encoding="utf-8")
    with pytest.raises(ModelError) as err:
        load_model(model, cpu)
    # The tokenizer is named too unless Studio handed over one it shares between models (already read once).
    assert re.fullmatch(r"The model partial's model_index\.json does not name its scheduler, text_encoder"
                        r"(, tokenizer)? and vae, which its pipeline needs; if it is a download that did not finish, "
                        r"download it again to resume; otherwise copy the whole folder again\.",
                        str(err.value)), err.value


def test_the_device_dtype_is_applied_to_every_component(tiny_model_dir):
    """On CUDA the loader asks for float16; the components must really arrive in it (checked on the CPU)."""
    from studio.engine.device import DeviceInfo

    half = DeviceInfo("cpu", torch.device("cpu"), torch.float16, "test")
    pipe = load_model(tiny_model_dir, half).text2img
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.float16}

def test_a_folder_of_fp16_variant_weights_loads(tiny_model_dir, cpu, tmp_path):
    # What Studio downloads from the hub: every weight file as diffusers' "fp16" variant.
    model = copy_model(tiny_model_dir, tmp_path / "variant")
    for weights in model.rglob("*.safetensors"):
        weights.rename(weights.with_name(weights.name.replace(".safetensors", ".fp16.safetensors")))
    loaded = load_model(model, cpu)
    assert loaded.text2img.unet.config.in_channels == 4
