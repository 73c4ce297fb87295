"""Converting pickle checkpoints to safetensors: only tensors come out, and nothing in the pickle ever runs."""

from __future__ import annotations

import os
import pickle
import stat
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from studio.core.errors import StudioError
from studio.engine.convert import Conversion, convert_to_safetensors


class WritesSentinel:
    """Unpickling this would create the sentinel file, as a malicious checkpoint would run its payload."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def state_dict() -> OrderedDict[str, torch.Tensor]:
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    return layer.state_dict()


def test_a_state_dict_converts_and_round_trips_exactly(tmp_path):
    original = state_dict()
    torch.save(original, tmp_path / "model.pth")
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "model.safetensors"
    summary = convert_to_safetensors(tmp_path / "model.pth", dest)
    loaded = load_file(str(dest))
    assert set(loaded) == set(original)
    for name, tensor in original.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    assert summary == Conversion(len(original), sum(t.numel() * t.element_size() for t in original.values()))
    assert [p.name for p in dest.parent.iterdir()] == ["model.safetensors"]  # no temp file left


def test_a_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path):
    sentinel = tmp_path / "sentinel"
    torch.save({"weight": torch.ones(2), "payload": WritesSentinel(sentinel)}, tmp_path / "evil.pth")
    dest = tmp_path / "evil.safetensors"
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path / "evil.pth", dest)
    assert str(caught.value) == (f"{tmp_path / 'evil.pth'} contains code or objects that a weights file should "
                                 "not have, so it was not loaded.")
    assert not sentinel.exists() and not dest.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_plain_pickle_payload_is_refused_too(tmp_path, protocol):
    sentinel = tmp_path / "sentinel"
    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps(WritesSentinel(sentinel), protocol=protocol))
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path / "evil.ckpt", tmp_path / "out.safetensors")
    if protocol == 2:  # protocol 4+ framing is itself unknown to torch's unpickler: "not a checkpoint"
        assert "contains code or objects" in str(caught.value)
    assert not sentinel.exists() and not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("key", ["state_dict", "model", "params_ema", "params"])
def test_weights_nested_in_a_training_checkpoint_are_found(tmp_path, key):
    original = state_dict()
    torch.save({key: original, "epoch": 12, "optimizer_name": "adam"}, tmp_path / "ckpt.pth")
    summary = convert_to_safetensors(tmp_path / "ckpt.pth", tmp_path / "out.safetensors")
    assert set(load_file(str(tmp_path / "out.safetensors"))) == set(original)
    assert (summary.tensors, summary.taken_from, summary.beside) == (len(original), key, ("epoch", "optimizer_name"))


def test_non_tensors_are_left_out_and_views_become_contiguous(tmp_path):
    base = torch.arange(12.0).view(3, 4)
    torch.save({"t": base.t(), "same": base, "note": "hello", "step": 3}, tmp_path / "mixed.pt")
    convert_to_safetensors(tmp_path / "mixed.pt", tmp_path / "mixed.safetensors")
    loaded = load_file(str(tmp_path / "mixed.safetensors"))
    assert set(loaded) == {"t", "same"}
    assert torch.equal(loaded["t"], base.t()) and torch.equal(loaded["same"], base)


def test_tensors_nested_in_dicts_and_lists_are_all_kept_under_dotted_names(tmp_path):
    # Only top-level tensors were written ("1 tensors", exit 0); {"encoder": {…}, "decoder": {…}} "held no tensors".
    t = torch.arange(3.0)
    torch.save({"a": t, "b": "text", "n": 5, "sub": {"c": t * 2, "deep": {"x": t * 3}}, "lst": [t * 4, (t * 5,)],
                "none": None}, tmp_path / "mixed.pth")
    summary = convert_to_safetensors(tmp_path / "mixed.pth", tmp_path / "mixed.safetensors")
    loaded = load_file(str(tmp_path / "mixed.safetensors"))
    assert sorted(loaded) == ["a", "lst.0", "lst.1.0", "sub.c", "sub.deep.x"]
    assert torch.equal(loaded["sub.deep.x"], t * 3) and torch.equal(loaded["lst.1.0"], t * 5)
    assert summary.tensors == 5 and summary.taken_from is None
    assert summary.not_tensors == ("b (str)", "n (int)", "none (None)")

    torch.save({"encoder": {"e": t}, "decoder": {"d": t}}, tmp_path / "encdec.pth")
    assert convert_to_safetensors(tmp_path / "encdec.pth", tmp_path / "encdec.safetensors").tensors == 2
    assert sorted(load_file(str(tmp_path / "encdec.safetensors"))) == ["decoder.d", "encoder.e"]


def test_weights_nested_deeper_under_model_are_unwrapped_and_flattened(tmp_path):
    t = torch.ones(2)
    torch.save({"model": {"unet": {"w": t}}, "optimizer": {"state": {0: {"exp_avg": t}}}}, tmp_path / "mo.pth")
    summary = convert_to_safetensors(tmp_path / "mo.pth", tmp_path / "mo.safetensors")
    assert list(load_file(str(tmp_path / "mo.safetensors"))) == ["unet.w"]
    assert (summary.taken_from, summary.beside) == ("model", ("optimizer",))


def test_two_tensors_that_flatten_to_one_name_are_refused(tmp_path):
    torch.save({"a.b": torch.ones(1), "a": {"b": torch.zeros(1)}}, tmp_path / "clash.pth")
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path / "clash.pth", tmp_path / "clash.safetensors")
    assert str(caught.value) == (f"{tmp_path / 'clash.pth'} has two tensors that would both be named a.b, so it was "
                                 "not converted.")
    assert not (tmp_path / "clash.safetensors").exists()


def test_a_bare_tensor_is_refused_as_it_has_no_name(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "bare.pth")
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path / "bare.pth", tmp_path / "bare.safetensors")
    assert str(caught.value) == (f"{tmp_path / 'bare.pth'} holds a single tensor without a name; a safetensors file "
                                 "names each tensor, so it was not converted.")
    assert not (tmp_path / "bare.safetensors").exists()


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    # Converted weights were written 0600 (mkstemp's mode), and --overwrite tightened an existing file to 0600.
    torch.save(state_dict(), tmp_path / "model.pth")
    old_umask = os.umask(0o022)
    try:
        convert_to_safetensors(tmp_path / "model.pth", tmp_path / "new.safetensors")
        (tmp_path / "shared.safetensors").write_bytes(b"old")
        os.chmod(tmp_path / "shared.safetensors", 0o664)
        convert_to_safetensors(tmp_path / "model.pth", tmp_path / "shared.safetensors")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "new.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "shared.safetensors").stat().st_mode) == 0o664
    assert set(load_file(str(tmp_path / "shared.safetensors"))) == set(state_dict())


def test_a_folder_is_not_called_a_missing_file(tmp_path):
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path, tmp_path / "out.safetensors")
    assert str(caught.value) == f"{tmp_path} is a folder, not a checkpoint file."


def test_a_missing_output_folder_is_not_made(tmp_path):
    torch.save(state_dict(), tmp_path / "model.pth")
    dest = tmp_path / "no" / "such" / "out.safetensors"
    with pytest.raises(StudioError, match=r"^Could not write .*out\.safetensors: "):
        convert_to_safetensors(tmp_path / "model.pth", dest)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("junk", [bytes(range(256)), b"hello world" * 8, b"PK\x03\x04 broken zip", b""])
def test_garbage_bytes_give_a_sentence(tmp_path, junk):
    (tmp_path / "junk.pth").write_bytes(junk)
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path / "junk.pth", tmp_path / "out.safetensors")
    assert str(caught.value) == f"{tmp_path / 'junk.pth'} is not a PyTorch checkpoint, so it could not be converted."
    assert not (tmp_path / "out.safetensors").exists()


def test_a_safetensors_file_is_recognised(tmp_path):
    save_file({"w": torch.ones(2)}, str(tmp_path / "already.pth"))
    with pytest.raises(StudioError, match="It is already a safetensors file"):
        convert_to_safetensors(tmp_path / "already.pth", tmp_path / "out.safetensors")


def test_a_checkpoint_without_tensors_gives_a_sentence(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "empty.pth")
    with pytest.raises(StudioError, match=r"holds no tensors, so there is nothing to convert\.$"):
        convert_to_safetensors(tmp_path / "empty.pth", tmp_path / "out.safetensors")


def test_a_missing_file_gives_a_sentence(tmp_path):
    with pytest.raises(StudioError, match=r"^There is no checkpoint file at .*nothing\.pth\.$"):
        convert_to_safetensors(tmp_path / "nothing.pth", tmp_path / "out.safetensors")


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    torch.save(state_dict(), tmp_path / "model.pth")
    dest = tmp_path / "model.safetensors"
    dest.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", fail)
    with pytest.raises(StudioError, match=rf"^Could not write {dest}: disk full\.$"):
        convert_to_safetensors(tmp_path / "model.pth", dest)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth", "model.safetensors"]


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # deprecated, yet weights_only loads it
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning")
@pytest.mark.parametrize(("tensor", "said"), [
    (lambda: torch.ones(3, 3).to_sparse(), "a sparse tensor 'x', which a safetensors file cannot store"),
    (lambda: torch.ones(3, 3).to_sparse_csr(), "a sparse tensor 'x', which a safetensors file cannot store"),
    (lambda: torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8),
     "a quantized tensor 'x', which a safetensors file cannot store"),
    (lambda: torch.empty(2, device="meta"), "a meta tensor 'x', which holds no data")])
def test_a_tensor_safetensors_cannot_hold_is_refused_with_a_sentence_and_no_file(tmp_path, tensor, said):
    # A traceback each: "unsupported memory format option Contiguous", KeyError torch.qint8, "Cannot copy out of meta".
    torch.save({"w": torch.ones(2), "x": tensor()}, tmp_path / "odd.pth")
    with pytest.raises(StudioError) as caught:
        convert_to_safetensors(tmp_path / "odd.pth", tmp_path / "odd.safetensors")
    assert str(caught.value) == f"{tmp_path / 'odd.pth'} holds {said}; it was not converted."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.pth"]
