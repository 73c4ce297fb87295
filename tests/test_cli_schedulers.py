"""Scheduler names as a person writes them: ``studio generate --scheduler`` in any case, with spaces, underscores
or hyphens, recorded by Studio's own name; the same reading for a picture's A1111 ``Sampler:`` and the saved
choice."""

from __future__ import annotations

import pytest
from PIL import Image, PngImagePlugin

from studio.cli import main
from studio.core.requests import SCHEDULER_NAMES


@pytest.mark.parametrize(("given", "recorded"), [
    ("euler_a", "Euler a"), ("EULER A", "Euler a"), ("euler", "Euler"), ("dpm++ 2m karras", "DPM++ 2M Karras"),
    ("DPM++-2M-SDE-Karras", "DPM++ 2M SDE Karras"), ("unipc", "UniPC"), ("ddim", "DDIM")])
def test_generate_takes_a_scheduler_in_any_case_and_records_its_own_name(given, recorded, tiny_model_dir,
                                                                          studio_home, tmp_path, monkeypatch):
    import studio.cli_job

    ran: list = []

    async def generate(request, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ran.append(request)
        return 0

    monkeypatch.setattr(studio.cli_job, "_generate", generate)
    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--scheduler", given, "-o",
                 str(tmp_path / "o.png")]) == 0
    assert [request.scheduler for request in ran] == [recorded]


def test_an_unknown_scheduler_lists_the_ones_there_are(tiny_model_dir, studio_home, tmp_path, capsys):
    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--scheduler", "euler_b", "-o",
                 str(tmp_path / "o.png")]) == 2
    assert capsys.readouterr().err == f"studio: Unknown scheduler 'euler_b'; choose one of: " \
                                      f"{', '.join(SCHEDULER_NAMES)}.\n"


def test_a_picture_s_sampler_written_another_way_is_read_as_studio_s(studio_home, tmp_path, capsys):
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", "a fox\nSteps: 20, Sampler: DPM++_2M_Karras, CFG scale: 7, Seed: 1, Size: 64x64")
    Image.new("RGB", (64, 64)).save(tmp_path / "fox.png", pnginfo=text)
    assert main(["inspect", str(tmp_path / "fox.png")]) == 0
    assert "Sampler:   DPM++_2M_Karras (Studio: DPM++ 2M Karras)" in capsys.readouterr().out.splitlines()


def test_the_prompt_panel_s_saved_scheduler_is_read_in_any_case(studio_home):
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings

    file = studio_paths().settings_file
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text('[generation]\nscheduler = "dpm++ 2m karras"\n', encoding="utf-8")
    assert load_settings().generation.scheduler == "DPM++ 2M Karras"
