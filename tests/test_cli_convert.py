"""``studio convert-weights IN OUT``: a pickle checkpoint's tensors written as safetensors, and nothing a person has
written over without asking (``--overwrite``), never the checkpoint it reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from studio_testing import studio_here

from studio.cli_exit import EXIT_BAD_INPUT


def checkpoint(path: Path) -> bytes:
    torch.save({"state_dict": {"w": torch.arange(4.0)}}, path)
    return path.read_bytes()


def test_an_existing_out_is_refused_without_overwrite_and_replaced_with_it(studio_home, tmp_path, capsys):
    # convert-weights replaced an OUT that was there, without a word.
    source, dest = tmp_path / "old.pth", tmp_path / "new.safetensors"
    checkpoint(source)
    dest.write_text("precious")

    refused = studio_here(capsys, "convert-weights", str(source), str(dest))
    assert refused.returncode == EXIT_BAD_INPUT
    assert refused.stderr.splitlines() == [
        f"studio: {dest} already exists; give another OUT or add --overwrite to replace it."]
    assert dest.read_text() == "precious"

    done = studio_here(capsys, "convert-weights", str(source), str(dest), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert torch.equal(load_file(dest)["w"], torch.arange(4.0))


def test_in_is_never_written_over_even_with_overwrite(studio_home, tmp_path, capsys):
    # A checkpoint named .safetensors (a pickle renamed) given as both IN and OUT.
    source = tmp_path / "renamed.safetensors"
    before = checkpoint(source)
    for extra in ((), ("--overwrite",)):
        refused = studio_here(capsys, "convert-weights", str(source), str(tmp_path / "." / source.name), *extra)
        assert refused.returncode == EXIT_BAD_INPUT
        assert refused.stderr.splitlines() == [
            f"studio: {tmp_path / '.' / source.name} is the checkpoint this command reads; Studio does not write over "
            "it, even with --overwrite: give another OUT."]
        assert source.read_bytes() == before


def test_a_new_out_is_written_without_overwrite(studio_home, tmp_path, capsys):
    source, dest = tmp_path / "old.pth", tmp_path / "new.safetensors"
    checkpoint(source)
    done = studio_here(capsys, "convert-weights", str(source), str(dest))
    assert (done.returncode, done.stdout.startswith(f"Wrote {dest}: 1 tensor,")) == (0, True), done


def test_nested_tensors_are_written_and_what_is_left_out_is_named(studio_home, tmp_path, capsys):
    # Only top-level tensors were written, with "Wrote …: 1 tensors" and exit 0, and not a word of the rest.
    t = torch.ones(2)
    source, dest = tmp_path / "mixed.pth", tmp_path / "mixed.safetensors"
    torch.save({"a": t, "b": "text", "n": 5, "sub": {"c": t}, "lst": [t]}, source)
    done = studio_here(capsys, "convert-weights", str(source), str(dest))
    assert done.returncode == 0, done.stderr
    assert sorted(load_file(dest)) == ["a", "lst.0", "sub.c"]
    assert done.stderr.splitlines() == ["note: Left out 2 values that are not tensors: b (str), n (int)."]
    assert done.stdout == f"Wrote {dest}: 3 tensors, 24 bytes.\n"


def test_the_rest_of_a_training_checkpoint_is_named_and_one_tensor_is_singular(studio_home, tmp_path, capsys):
    source, dest = tmp_path / "ckpt.pth", tmp_path / "ckpt.safetensors"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3, "optimizer": {"lr": 0.1}}, source)
    done = studio_here(capsys, "convert-weights", str(source), str(dest))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "note: Wrote only the weights under 'state_dict'; left out the rest of the checkpoint: epoch, optimizer."]
    assert done.stdout == f"Wrote {dest}: 1 tensor, 8 bytes.\n"


def test_a_bare_tensor_is_refused_with_a_sentence(studio_home, tmp_path, capsys):
    torch.save(torch.zeros(3), tmp_path / "bare.pth")
    refused = studio_here(capsys, "convert-weights", str(tmp_path / "bare.pth"), str(tmp_path / "bare.safetensors"))
    assert refused.returncode == EXIT_BAD_INPUT
    assert refused.stderr.splitlines() == [
        f"studio: {tmp_path / 'bare.pth'} holds a single tensor without a name; a safetensors file names each tensor, "
        "so it was not converted."]
    assert not (tmp_path / "bare.safetensors").exists()


def test_a_missing_output_folder_is_refused_not_made(studio_home, tmp_path, capsys):
    source, dest = tmp_path / "w.pth", tmp_path / "no" / "dir" / "o.safetensors"
    checkpoint(source)
    refused = studio_here(capsys, "convert-weights", str(source), str(dest))
    assert refused.returncode == EXIT_BAD_INPUT
    assert refused.stderr.splitlines() == [f"studio: The output folder {dest.parent} does not exist."]
    assert not (tmp_path / "no").exists()


def test_written_weights_get_the_umask_mode_and_overwritten_ones_keep_theirs(studio_home, tmp_path, capsys):
    # convert-weights wrote 0600 files and --overwrite turned a 0644 file into 0600.
    source, new, shared = tmp_path / "w.pth", tmp_path / "new.safetensors", tmp_path / "shared.safetensors"
    checkpoint(source)
    shared.write_bytes(b"old")
    shared.chmod(0o664)
    old_umask = os.umask(0o022)
    try:
        assert studio_here(capsys, "convert-weights", str(source), str(new)).returncode == 0
        assert studio_here(capsys, "convert-weights", str(source), str(shared), "--overwrite").returncode == 0
    finally:
        os.umask(old_umask)
    assert (stat.S_IMODE(new.stat().st_mode), stat.S_IMODE(shared.stat().st_mode)) == (0o644, 0o664)


@pytest.mark.parametrize(("source", "dest", "sentence"), [
    (".", "o.safetensors", ". is a folder, not a checkpoint file."),
    ("w.pth", ".", "The output . is a folder; give a file name ending in .safetensors."),
    ("w.pth", ".safetensors",
     "The output .safetensors is only an extension; give a file name before it, such as model.safetensors."),
    ("w.pth", "o.txt", "The output 'o.txt' must end in .safetensors."),
])
def test_wrong_ins_and_outs_are_refused_with_a_true_sentence(studio_home, tmp_path, capsys, monkeypatch, source,
                                                              dest, sentence):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    checkpoint(work / "w.pth")
    refused = studio_here(capsys, "convert-weights", source, dest)
    assert refused.returncode == EXIT_BAD_INPUT
    assert refused.stderr.splitlines() == [f"studio: {sentence}"]
    assert [p.name for p in work.iterdir()] == ["w.pth"]


@pytest.mark.parametrize("source", ["none.pth", "."])
def test_in_is_checked_before_out(studio_home, tmp_path, capsys, monkeypatch, source):
    # A missing IN with an OUT that exists was answered "…already exists; give another OUT…", the wrong thing to fix.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "there.safetensors").write_text("precious")
    refused = studio_here(capsys, "convert-weights", source, "there.safetensors")
    assert refused.returncode == EXIT_BAD_INPUT
    assert refused.stderr.splitlines() == [
        "studio: There is no checkpoint file at none.pth." if source == "none.pth"
        else "studio: . is a folder, not a checkpoint file."]
    assert (tmp_path / "there.safetensors").read_text() == "precious"


@pytest.mark.parametrize(("weights", "said"), [(torch.ones(1, dtype=torch.uint8), "1 byte"),
                                               (torch.ones(768), "3.0 KiB"), (torch.ones(3, 2**18), "3.0 MiB")])
def test_the_size_written_is_said_in_a_unit_that_shows_it(studio_home, tmp_path, capsys, weights, said):
    # Every small file was "0.0 MiB".
    source, dest = tmp_path / "w.pth", tmp_path / "w.safetensors"
    torch.save({"w": weights}, source)
    done = studio_here(capsys, "convert-weights", str(source), str(dest))
    assert done.stdout == f"Wrote {dest}: 1 tensor, {said}.\n"


def test_a_named_pipe_in_is_called_one_in_the_words_models_import_uses(studio_home, tmp_path, capsys):
    # convert-weights said "There is no checkpoint file at …/fifo.pth", where models import said "is a named pipe".
    fifo = tmp_path / "fifo.pth"
    os.mkfifo(fifo)
    refused = studio_here(capsys, "convert-weights", str(fifo), str(tmp_path / "o.safetensors"))
    imported = studio_here(capsys, "models", "import", str(fifo), "--convert")
    assert refused.returncode == imported.returncode == EXIT_BAD_INPUT
    assert refused.stderr.splitlines() == imported.stderr.splitlines() == [
        f"studio: {fifo} is a named pipe (FIFO), not a weights file."]
    assert not (tmp_path / "o.safetensors").exists()
