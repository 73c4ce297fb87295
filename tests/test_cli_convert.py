"""``studio convert-weights IN OUT``: a pickle checkpoint's tensors written as safetensors, and nothing a person has
written over without asking (``--overwrite``), never the checkpoint it reads."""

from __future__ import annotations

from pathlib import Path

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
    assert (done.returncode, done.stdout.startswith(f"Wrote {dest}: 1 tensors")) == (0, True), done
