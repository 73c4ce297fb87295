"""``studio models remove`` and symbolic links: a link in the models folder goes as a link, never followed; files
that lie outside the models folder are never deleted; a linked folder is unlinked."""

from __future__ import annotations

import os

import pytest
from model_files import diffusers_folder, lora, sd1
from studio_testing import at_a_terminal


def test_removing_a_linked_model_removes_the_link_and_keeps_its_files(studio_home, tmp_path, capsys):
    """`studio models remove tiny -y` printed "Removed tiny (…/bigdisk/tiny-sd)." and the real folder was gone."""
    from studio.cli import main

    tiny = diffusers_folder(tmp_path / "bigdisk" / "tiny-sd")
    ink = lora(tmp_path / "elsewhere" / "my ink.safetensors")
    models = studio_home / "data" / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "loras").mkdir()
    (models / "checkpoints" / "tiny").symlink_to(tiny)
    (models / "loras" / "ink.safetensors").symlink_to(ink)
    assert main(["models", "remove", "tiny", "-y"]) == 0
    assert capsys.readouterr().out == (f"Removed the link {models / 'checkpoints' / 'tiny'}; the files it points "
                                       f"to, in {tiny.resolve()}, are kept.\n")
    assert main(["models", "remove", "ink", "-y"]) == 0
    assert capsys.readouterr().out.startswith(f"Removed the link {models / 'loras' / 'ink.safetensors'};")
    assert not os.path.lexists(models / "checkpoints" / "tiny")
    assert not os.path.lexists(models / "loras" / "ink.safetensors")
    assert (tiny / "model_index.json").is_file() and ink.is_file()


def test_a_model_in_a_linked_sub_folder_outside_the_models_folder_is_not_deleted(studio_home, tmp_path, capsys):
    from studio.cli import main
    from studio.cli_exit import EXIT_BAD_INPUT

    outside = sd1(tmp_path / "elsewhere" / "x.safetensors")
    (studio_home / "data" / "models" / "checkpoints").mkdir(parents=True)
    (studio_home / "data" / "models" / "checkpoints" / "sub").symlink_to(outside.parent)
    assert main(["models", "remove", "x", "-y"]) == EXIT_BAD_INPUT
    assert "is outside Studio's models folder" in capsys.readouterr().err and outside.is_file()


def test_a_linked_folder_is_unlinked_and_its_files_kept(studio_home, tmp_path, capsys):
    from studio.cli import main
    from studio.core.settings import load_settings

    tiny = diffusers_folder(tmp_path / "other" / "tiny-sd")
    assert main(["models", "link", str(tiny)]) == 0
    assert main(["models", "remove", "tiny-sd", "-y"]) == 0
    assert capsys.readouterr().out.endswith(f"Unlinked {tiny.resolve()} (its files are untouched).\n")
    assert load_settings().extra_model_paths == [] and (tiny / "model_index.json").is_file()


def test_the_question_names_the_link_and_says_its_files_are_kept(tmp_path):
    pytest.importorskip("pty")  # POSIX only
    home = tmp_path / "studio-home"
    tiny = diffusers_folder(tmp_path / "bigdisk" / "tiny-sd")
    (home / "data" / "models" / "checkpoints").mkdir(parents=True)
    (home / "data" / "models" / "checkpoints" / "tiny").symlink_to(tiny)
    code, shown = at_a_terminal(home, ["models", "remove", "tiny"], b"n\r")
    assert (code, shown.splitlines()[0]) == (
        1, f"Remove the link tiny? The files it points to, in {tiny.resolve()}, are kept. [y/N] n"), shown
    assert os.path.islink(home / "data" / "models" / "checkpoints" / "tiny")
