"""What the settings loader had to do (a value reset, a file set aside) is said by every command that loads them:
the window shows it, and studio.log alone would leave a command-line user unaware of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.cli import main
from studio.core.paths import studio_paths

BAD_VALUE = ("[generation]\nsteps = 0\n",
             "note: Some settings could not be read (generation.steps) and take their defaults; the file as it was "
             "is kept as settings.toml.broken (in {folder}).")
NOT_TOML = ("steps = [\n",
            "note: The settings file could not be read (Invalid value (at end of document)); Studio started with its "
            "defaults and kept the file as settings.toml.broken (in {folder}).")


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    missing = str(tmp_path / "no-such-folder" / "out.png")
    return {
        "models list": ["models", "list", "--no-hash"],
        "generate": ["generate", "--prompt", "a fox", "-o", missing],
        "postprocess": ["postprocess", str(tmp_path / "in.png"), "-o", missing, "--method", "blur"],
        "plugins install": ["plugins", "install", "some-plugin"],
    }


@pytest.mark.parametrize("command", ["models list", "generate", "postprocess", "plugins install"])
@pytest.mark.parametrize(("text", "note"), [BAD_VALUE, NOT_TOML], ids=["bad value", "not TOML"])
def test_a_command_that_loads_the_settings_says_the_load_note_once(command, text, note, studio_home, tmp_path,
                                                                    capsys):
    paths = studio_paths()
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text(text, encoding="utf-8")

    main(_commands(tmp_path)[command])

    lines = capsys.readouterr().err.splitlines()
    assert lines.count(note.format(folder=paths.config_dir)) == 1, lines
    assert (paths.config_dir / "settings.toml.broken").read_text(encoding="utf-8") == text


def test_a_command_with_readable_settings_says_no_note(studio_home, tmp_path, capsys):
    paths = studio_paths()
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text("[generation]\nsteps = 30\n", encoding="utf-8")

    assert main(["models", "list", "--no-hash"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_settings_loaded_twice_by_one_command_are_said_once(studio_home, tmp_path, capsys, monkeypatch):
    # A file with a bad value reads the same each time: the second load's note is the first's.
    import studio.cli_models as cli_models
    from studio.core.settings import load_settings

    paths = studio_paths()
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text(BAD_VALUE[0], encoding="utf-8")
    monkeypatch.setattr(cli_models, "run_models", lambda args: [load_settings(), load_settings()] and 0)

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines == [BAD_VALUE[1].format(folder=paths.config_dir)]


def test_generate_help_says_the_load_note_once_as_a_note_and_logs_the_rest(tmp_path):
    # Help reads the settings for its defaults while the command line is parsed: the note came three times, in
    # three forms (the log's two lines through Python's last resort, and the note bare), none as `note: …`.
    from studio_testing import run_studio

    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.toml").write_text(
        'device = "bogus"\n[generation]\nwidth = 3\nnegative_prompt = 5\nscheduler = "Nope"\n', encoding="utf-8")
    done = run_studio(home, "generate", "--help")
    assert (done.returncode, done.stdout.startswith("usage: studio generate")) == (0, True)
    assert done.stderr.splitlines() == [
        "note: Some settings could not be read (generation.width, generation.scheduler, generation.negative_prompt, "
        f"device) and take their defaults; the file as it was is kept as settings.toml.broken (in {home / 'config'})."]
    assert "Settings file" in (home / "data" / "studio.log").read_text(encoding="utf-8")  # the log keeps its lines


def test_a_config_folder_that_is_a_file_is_said_at_start_and_when_a_link_is_saved(studio_home, tmp_path, capsys):
    """`studio models list` said nothing, and `studio models link` said "…settings.toml, which could not be written
    (File exists)"."""
    paths = studio_paths()
    studio_home.mkdir()
    paths.config_dir.write_text("not a folder")
    assert main(["models", "list", "--no-hash"]) == 0
    assert f"{paths.config_dir} is a file, not a folder" in capsys.readouterr().err
    folder = tmp_path / "more-models"
    folder.mkdir()
    assert main(["models", "link", str(folder)]) != 0
    err = capsys.readouterr().err
    assert f"which could not be written ({paths.config_dir} is a file, not a folder)." in err, err
