"""Speed compile (torch.compile) asked for where it does nothing, a device without CUDA: said once, as a note, by
``studio generate``, ``studio history rerun`` and ``studio bench --compile``; before, it silently had no effect."""

from __future__ import annotations

import json

import pytest
from studio_testing import requests_run

from studio.services.history_store import HistoryEntry


@pytest.fixture
def jobs_recorded(monkeypatch: pytest.MonkeyPatch) -> list:
    """The requests the command goes on to run, recorded instead of run (the engine is not started)."""
    return requests_run(monkeypatch)


def notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note: ")]


@pytest.mark.parametrize(("given", "setting", "said"), [
    (["--speed", "compile"], "fast", ["note: --speed compile only applies on a CUDA GPU; running without it."]),
    ([], "compile", ["note: The speed setting compile (torch.compile) only applies on a CUDA GPU; running without "
                     "it."]),
    (["--speed", "fast"], "compile", []),
    ([], "fast", []),
])
def test_generate_says_once_that_compile_does_nothing_on_the_cpu(studio_home, tiny_model_dir, tmp_path, monkeypatch,
                                                                 capsys, jobs_recorded, given, setting, said):
    from studio.cli import main
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    settings = load_settings()
    settings.speed = setting
    save_settings(settings)
    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "64x64", *given,
                 "-o", str(tmp_path / "fox.png")]) == 0
    assert notes(capsys.readouterr().err) == said
    assert len(jobs_recorded) == 1


def test_rerun_says_that_the_compile_setting_does_nothing_on_the_cpu(studio_home, tiny_model_dir, tmp_path,
                                                                     monkeypatch, capsys, jobs_recorded):
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings
    from studio.services.history_store import HistoryStore

    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    settings = load_settings()
    settings.speed = "compile"
    save_settings(settings)
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2))
    store.close()
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png")]) == 0
    assert notes(capsys.readouterr().err) == [
        "note: The speed setting compile (torch.compile) only applies on a CUDA GPU; running without it."]
    assert [r.speed for r in jobs_recorded] == ["compile"]  # the request keeps what the person asked for


def test_bench_compile_on_the_cpu_is_said_once_and_not_claimed_in_the_figures(studio_home, capsys):
    from studio.cli import main

    assert main(["bench", "--device", "cpu", "--runs", "1", "--compile", "--json"]) == 0
    out, err = capsys.readouterr()
    assert notes(err) == ["note: --compile only applies on a CUDA GPU; running without it."]
    assert json.loads(out)["compile"] is False  # it was true, for a bench that compiled nothing
