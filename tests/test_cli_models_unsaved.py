"""``studio models link|remove`` where what they change cannot be written: the settings file (read-only, a full
disk), or the record of where an imported model came from. One sentence saying what was done and what was not."""

from __future__ import annotations

import errno
import os

import pytest
from model_files import lora, sd1
from studio_testing import run_studio, why_root_cannot_give_up_writes


def full_disk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - as write_atomically is called
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_link_the_settings_cannot_keep_is_not_linked_and_says_so(studio_home, tmp_path, monkeypatch, capsys):
    """A full disk under the settings file: said as Studio's generic "Settings could not be saved", exit 2 (bad
    input), without saying that the folder was not linked."""
    import studio.core.images
    from studio.cli import main
    from studio.cli_exit import EXIT_FAILED
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings

    folder = tmp_path / "ComfyUI"
    lora(folder / "loras" / "ink.safetensors")
    write = studio.core.images.write_atomically

    def settings_on_a_full_disk(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        return (full_disk if path.name == "settings.toml" else write)(path, *args, **kwargs)

    monkeypatch.setattr(studio.core.images, "write_atomically", settings_on_a_full_disk)
    assert main(["models", "link", str(folder)]) == EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"studio: {folder} was not linked: Studio lists its linked folders in the settings file "
        f"{studio_paths().settings_file}, which could not be written (No space left on device).\n")
    monkeypatch.undo()
    assert load_settings().extra_model_paths == []


def test_an_unlink_the_settings_cannot_keep_says_the_folder_is_still_linked(tmp_path):
    if why := why_root_cannot_give_up_writes():
        pytest.skip(why)
    home = tmp_path / "home"
    folder = tmp_path / "ComfyUI"
    lora(folder / "loras" / "ink.safetensors")
    assert run_studio(home, "models", "link", str(folder)).returncode == 0
    config = home / "config"
    settings = config / "settings.toml"
    before = settings.read_bytes()
    config.chmod(0o555)
    settings.chmod(0o444)
    try:
        unlinked = run_studio(home, "models", "remove", str(folder), "-y", bound_by_permissions=True)
    finally:
        config.chmod(0o755)
        settings.chmod(0o644)
    assert (unlinked.returncode, unlinked.stdout) == (1, "")
    assert unlinked.stderr == (f"studio: {folder.resolve()} is still linked: Studio lists its linked folders in the "
                               f"settings file {settings}, which could not be written (Permission denied).\n")
    assert settings.read_bytes() == before
    assert "ink" in run_studio(home, "models", "list", "--no-hash").stdout


def test_a_model_deleted_whose_import_record_cannot_be_updated_is_said_removed_with_a_note(studio_home, tmp_path,
                                                                                          monkeypatch, capsys):
    """The model was deleted, then writing the record of where it was imported from failed (a full disk): a
    traceback, as if nothing had been removed."""
    import studio.services.import_records
    from studio.cli import main
    from studio.core.model_library import IMPORTS_FILE
    from studio.core.settings import load_settings

    source = sd1(tmp_path / "Downloads" / "dreamy.safetensors")
    assert main(["models", "import", str(source)]) == 0
    models = load_settings().models_dir
    (imported,) = (models / "checkpoints").glob("dreamy*.safetensors")
    capsys.readouterr()
    monkeypatch.setattr(studio.services.import_records, "write_atomically", full_disk)
    assert main(["models", "remove", "dreamy", "-y"]) == 0
    out, err = capsys.readouterr()
    assert out == f"Removed dreamy ({imported}).\n" and not imported.exists()
    # It was a copy: "dreamy was deleted" read as if the file imported from was gone.
    assert err == (f"note: The copy of dreamy in the models folder was deleted (the original, {source.resolve()}, is "
                   f"untouched), but the record of where it came from, in {models / IMPORTS_FILE}, could not be "
                   "updated (No space left on device).\n")
    assert source.exists()  # the file it was imported from is never touched


def test_a_downloaded_model_deleted_whose_record_cannot_be_updated_is_said_downloaded_not_a_copy(
        studio_home, monkeypatch, capsys):
    import json

    import studio.services.import_records
    from studio.cli import main
    from studio.core.model_library import IMPORTS_FILE
    from studio.core.settings import load_settings

    models = load_settings().models_dir
    downloaded = sd1(models / "checkpoints" / "dreamy.safetensors")
    (models / IMPORTS_FILE).write_text(json.dumps({str(downloaded.resolve()): "hub:someone/dreamy"}))
    monkeypatch.setattr(studio.services.import_records, "write_atomically", full_disk)
    assert main(["models", "remove", "dreamy", "-y"]) == 0
    assert capsys.readouterr().err == (
        f"note: dreamy, downloaded from Hugging Face (someone/dreamy), was deleted, but the record of where it came "
        f"from, in {models / IMPORTS_FILE}, could not be updated (No space left on device).\n")
