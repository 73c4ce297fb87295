from __future__ import annotations

import stat
from pathlib import Path

import pytest

from studio.core.errors import StudioError
from studio.core.paths import StudioPaths, studio_paths
from studio.core.settings import Settings, load_settings
from studio.core.settings_writing import save_settings


def test_settings_that_cannot_be_saved_raise_one_sentence(tmp_path):
    blocker = tmp_path / "config"
    blocker.write_text("a file where the config folder should be")
    paths = StudioPaths(blocker, tmp_path / "data", tmp_path / "cache")
    with pytest.raises(StudioError) as err:
        save_settings(Settings.defaults(paths), paths)
    assert str(err.value) == (f"Settings could not be saved to {Path(blocker) / 'settings.toml'}: {blocker} is a "
                              "file, not a folder.")  # mkdir's own words were "File exists"


def test_settings_read_where_the_config_folder_is_a_file_say_so(tmp_path):
    blocker = tmp_path / "config"
    blocker.write_text("a file where the config folder should be")
    settings = load_settings(StudioPaths(blocker, tmp_path / "data", tmp_path / "cache"))
    assert settings.load_note == (f"The settings file {blocker / 'settings.toml'} cannot be there: {blocker} is a "
                                  "file, not a folder; Studio started with its defaults and cannot save its settings "
                                  "until that file is moved away.")
    assert blocker.read_text() == "a file where the config folder should be"


def test_an_older_settings_snapshot_that_finishes_later_never_overwrites_a_newer_one(studio_home):
    """A background save's slow fsync finished after the save on quit, and the last edits were lost."""
    from studio.core.settings_writing import OrderedSaves

    saves = OrderedSaves()
    settings = load_settings()
    older, newer = saves.ticket(), saves.ticket()
    settings.generation.prompt = "new prompt"
    saves.save(settings, newer)
    stale = settings.model_copy(deep=True)
    stale.generation.prompt = "old prompt"
    saves.save(stale, older)
    assert load_settings().generation.prompt == "new prompt"


def test_the_window_saving_keeps_a_folder_a_command_linked_meanwhile_and_its_own_link_changes(studio_home, tmp_path):
    from studio.core.settings_writing import update_settings

    def links(*paths: Path):  # noqa: ANN202 - what `studio models link` (or unlink) does to the file
        def change(current: Settings) -> bool:
            current.extra_model_paths = list(paths)
            return True
        return change

    save_settings(Settings.defaults(studio_paths()).model_copy(update={"extra_model_paths": [tmp_path / "old"]}))
    window = load_settings()
    update_settings(links(tmp_path / "old", tmp_path / "by-command"))  # while the window is open
    window.device = "cpu"
    window.extra_model_paths = [*window.extra_model_paths, tmp_path / "by-window"]
    save_settings(window.model_copy(deep=True))  # a background save's snapshot
    assert load_settings().extra_model_paths == [tmp_path / "old", tmp_path / "by-command", tmp_path / "by-window"]
    window.extra_model_paths = [tmp_path / "old"]  # the window unlinks its own again
    save_settings(window)
    saved = load_settings()
    assert saved.extra_model_paths == [tmp_path / "old", tmp_path / "by-command"] and saved.device == "cpu"
    update_settings(links(tmp_path / "by-command"))
    save_settings(window)  # nothing changed in the window: the command's unlink stays
    assert load_settings().extra_model_paths == [tmp_path / "by-command"]


def test_settings_saved_while_another_studio_holds_the_lock_wait_for_it_then_say_so(studio_home, monkeypatch):
    from filelock import FileLock

    from studio.core import settings_writing as settings_module

    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    monkeypatch.setattr(settings_module, "SETTINGS_LOCK_TIMEOUT", 0.1)
    with FileLock(paths.config_dir / settings_module.SETTINGS_LOCK), \
            pytest.raises(StudioError, match=r"another Studio kept it busy for 0\.1 s; try again\.$"):
        save_settings(load_settings())
    assert not paths.settings_file.exists()


def test_a_settings_file_that_is_a_symbolic_link_is_written_through_the_link(tmp_path):
    """Settings kept with dotfiles: the first save replaced the link with a plain file, and the dotfile was left
    behind unchanged."""
    paths = StudioPaths(tmp_path / "config", tmp_path / "data", tmp_path / "cache")
    dotfile = tmp_path / "dotfiles" / "studio.toml"
    dotfile.parent.mkdir()
    dotfile.write_text('[generation]\nprompt = "from the dotfile"\n')
    paths.config_dir.mkdir()
    paths.settings_file.symlink_to(Path("..") / "dotfiles" / "studio.toml")  # relative, as dotfile managers make
    settings = load_settings(paths)
    assert settings.generation.prompt == "from the dotfile" and not settings.load_note
    settings.generation.prompt = "saved"
    save_settings(settings, paths)
    assert paths.settings_file.is_symlink() and load_settings(paths).generation.prompt == "saved"
    assert 'prompt = "saved"' in dotfile.read_text() and sorted(p.name for p in dotfile.parent.iterdir()) == [
        "studio.toml"]  # no temporary file left beside it


@pytest.mark.parametrize("through_a_link", [False, True])
def test_saving_settings_keeps_a_private_settings_file_private(tmp_path, through_a_link):
    """The new file replacing a 0600 settings file (or the dotfile a settings link names) came out 0644, readable
    by every user of the machine."""
    paths = StudioPaths(tmp_path / "config", tmp_path / "data", tmp_path / "cache")
    paths.config_dir.mkdir()
    file = tmp_path / "dotfiles" / "studio.toml" if through_a_link else paths.settings_file
    file.parent.mkdir(exist_ok=True)
    file.write_text('[generation]\nprompt = "private"\n')
    file.chmod(0o600)
    if through_a_link:
        paths.settings_file.symlink_to(file)
    settings = load_settings(paths)
    settings.generation.prompt = "saved"
    save_settings(settings, paths)
    assert load_settings(paths).generation.prompt == "saved" and stat.S_IMODE(file.stat().st_mode) == 0o600


@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_a_settings_link_that_leads_nowhere_is_said_and_never_replaced(tmp_path, link):
    """Studio started with its defaults without a word, and the first save put a plain file in place of the link."""
    paths = StudioPaths(tmp_path / "config", tmp_path / "data", tmp_path / "cache")
    paths.config_dir.mkdir()
    file = paths.settings_file
    if link == "dangling":
        file.symlink_to(tmp_path / "unplugged" / "studio.toml")
        problem = f"is a symbolic link to {tmp_path / 'unplugged' / 'studio.toml'}, which is not there"
    else:
        (paths.config_dir / "other.toml").symlink_to(file)
        file.symlink_to(paths.config_dir / "other.toml")
        problem = "is a loop of symbolic links"
    settings = load_settings(paths)
    assert settings.load_note == (f"The settings file {file} {problem}; Studio started with its defaults, and does "
                                  "not save settings there until the link is fixed.")
    with pytest.raises(StudioError) as refused:
        save_settings(settings, paths)
    assert str(refused.value) == (f"Settings could not be saved: the settings file {file} {problem}, and Studio "
                                  "does not replace it; fix the link, or delete it to let Studio write a new file.")
    assert file.is_symlink() and not (tmp_path / "unplugged").exists()


def test_a_settings_link_to_a_file_that_is_not_toml_keeps_the_link(tmp_path):
    """The unreadable file was moved aside by deleting the link; the next save then wrote a plain file there."""
    paths = StudioPaths(tmp_path / "config", tmp_path / "data", tmp_path / "cache")
    dotfile = tmp_path / "dotfiles" / "studio.toml"
    dotfile.parent.mkdir()
    dotfile.write_text("not = [toml")
    paths.config_dir.mkdir()
    paths.settings_file.symlink_to(dotfile)
    settings = load_settings(paths)
    assert "kept the file as" in settings.load_note and paths.settings_file.is_symlink()
    save_settings(settings, paths)
    assert paths.settings_file.is_symlink() and "[generation]" in dotfile.read_text()
