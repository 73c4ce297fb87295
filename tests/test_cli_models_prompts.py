"""``studio models remove|download`` asking at a terminal: run in a pseudo-terminal, answered as a person would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo
from model_files import sd1
from studio_testing import at_a_terminal

from studio.core.units import format_size

pytest.importorskip("pty")  # POSIX only


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "studio-home"


def in_library(home: Path, name: str) -> Path:
    return sd1(home / "data" / "models" / "checkpoints" / f"{name}.safetensors")


# Ctrl+D is a no ("Nothing was removed.", 1); Ctrl+C is a cancel, as anywhere else ("studio: cancelled.", 130).
KEYS = pytest.mark.parametrize(("key", "expected_code"), [(b"\x04", 1), (b"\x03", 130)], ids=["ctrl-d", "ctrl-c"])


@KEYS
def test_ctrl_d_or_ctrl_c_at_the_remove_question_removes_nothing(home, key, expected_code):
    """Ctrl+D raised EOFError out of input(): a traceback. Ctrl+C said "Nothing was removed." and exit 1."""
    model = in_library(home, "dreamy")
    code, shown = at_a_terminal(home, ["models", "remove", "dreamy"], key)
    assert (code, "Traceback" in shown) == (expected_code, False), shown
    assert shown.startswith("Delete dreamy (SD 1.x, ") and model.is_file()
    said = "studio: cancelled." if key == b"\x03" else "Nothing was removed."
    assert shown.rstrip().endswith(said) and shown.count("Nothing was") == (key == b"\x04"), shown


@KEYS
def test_ctrl_d_or_ctrl_c_at_the_download_question_downloads_nothing(home, tmp_path, key, expected_code):
    """Ctrl+C said 'download stopped; run the same command again to resume' of a download never started."""
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": b"\x08\0\0\0\0\0\0\0{}      "}
    with FakeHub({"tester/tiny-vae": FakeRepo(files)}) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"}
        code, shown = at_a_terminal(home, ["models", "download", "tester/tiny-vae", "--endpoint", hub.url], key, env)
        fetched = hub.file_gets()
    assert (code, "Traceback" in shown, "resume" in shown) == (expected_code, False, False), shown
    assert "Download? [y/N] " in shown and fetched == []


def test_yes_at_the_questions_removes_and_downloads(home, tmp_path):
    model = in_library(home, "dreamy")
    code, shown = at_a_terminal(home, ["models", "remove", "dreamy"], b"y\n")
    assert code == 0 and "Removed dreamy" in shown and not model.exists()
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": b"\x08\0\0\0\0\0\0\0{}      "}
    with FakeHub({"tester/tiny-vae": FakeRepo(files)}) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"}
        code, shown = at_a_terminal(home, ["models", "download", "tester/tiny-vae", "--endpoint", hub.url], b"yes\n",
                                    env)
    assert code == 0 and "Downloaded tester/tiny-vae" in shown, shown
    assert (home / "data" / "models" / "vae" / "tiny-vae" / "diffusion_pytorch_model.safetensors").is_file()  # by kind


def test_remove_asks_about_what_it_would_delete_or_unlink_and_never_about_what_it_would_refuse(home, tmp_path):
    """It asked "Remove nothing? [y/N]" of a name no model has (and only a yes said so), and never said that a yes
    deletes the file, or where it is."""
    model = in_library(home, "dreamy")
    code, shown = at_a_terminal(home, ["models", "remove", "dreamy"], b"n\n")
    size = format_size(model.stat().st_size)
    assert (code, shown.splitlines()[0]) == (1, f"Delete dreamy (SD 1.x, {size}) at {model}? [y/N] n"), shown
    assert model.is_file()
    code, shown = at_a_terminal(home, ["models", "remove", "nothing"], b"y\n")
    assert (code, shown.strip()) == (2, "studio: The library has no model named 'nothing'; `studio models list` "
                                        "shows the names."), shown
    other = (tmp_path / "ComfyUI" / "models" / "loras")
    other.mkdir(parents=True)
    assert at_a_terminal(home, ["models", "link", str(other)], b"")[0] == 0
    code, shown = at_a_terminal(home, ["models", "remove", str(other)], b"y\n")
    assert code == 0 and shown.startswith(f"Unlink {other} (its files stay where they are)? [y/N] y"), shown
    assert other.is_dir()


def test_no_at_the_remove_question_says_nothing_was_removed(studio_home, monkeypatch, capsys):
    # Answering n exited without a word, where a person wonders whether anything happened.
    import io
    import sys

    from studio_testing import studio_here

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    model = in_library(studio_home, "dreamy")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    monkeypatch.setattr("builtins.input", lambda question: print(question, end="") or "n")
    done = studio_here(capsys, "models", "remove", "dreamy")
    assert done.returncode == 1 and model.is_file()
    assert done.stdout.startswith("Delete dreamy (SD 1.x, ") and done.stdout.endswith("? [y/N] Nothing was removed.\n")
