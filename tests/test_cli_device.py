"""Which device ``studio generate`` and ``history rerun`` run on: ``--device`` given comes before STUDIO_DEVICE, and a
device from STUDIO_DEVICE or the settings that PyTorch does not have here is said (a note), not silently the CPU."""

from __future__ import annotations

import pytest
import torch
from studio_testing import studio_here

import studio.cli_job
from studio.core.settings import load_settings
from studio.core.settings_writing import save_settings


@pytest.fixture
def devices_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device kind each job would run on, as the engine picks it when the job starts (the job is not run)."""
    from studio.engine.device import select_device

    ran: list[str] = []

    async def generate(request, env, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ran.append(select_device(env.device).kind)
        return 0

    monkeypatch.setattr(studio.cli_job, "_generate", generate)
    return ran


def generate(capsys, tiny_model_dir, tmp_path, *extra: str):  # noqa: ANN001, ANN201
    return studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "64x64",
                       "-o", str(tmp_path / "fox.png"), "--overwrite", *extra)


def notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note: ")]


def test_the_device_given_comes_before_studio_device(studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                     devices_run):
    # STUDIO_DEVICE=cpu and `--device cuda` on a CUDA machine: the job ran on the CPU, without a word.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: type("Props", (), {"name": "Pretend GPU", "total_memory": 8 * 2**30})())
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    assert generate(capsys, tiny_model_dir, tmp_path, "--device", "cuda").returncode == 0
    assert generate(capsys, tiny_model_dir, tmp_path).returncode == 0  # none given: the variable's, as before
    assert devices_run == ["cuda", "cpu"]
    import os

    assert os.environ["STUDIO_DEVICE"] == "cpu"  # put back after the job


@pytest.mark.parametrize(("device", "said"), [
    ("cuda", "note: The settings' device is cuda, but no CUDA GPU is available to PyTorch here; the job runs on the "
             "CPU."),
    ("mps", "note: The settings' device is mps, but Apple's MPS (Metal) is not available to PyTorch here; the job "
            "runs on the CPU."),
])
def test_a_settings_device_pytorch_does_not_have_is_said(studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                         devices_run, device, said):
    # device = "cuda" in the settings on a machine without CUDA: the job ran on the CPU, silently.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    settings = load_settings()
    settings.device = device
    save_settings(settings)

    done = generate(capsys, tiny_model_dir, tmp_path)
    assert (done.returncode, notes(done.stderr)) == (0, [said])
    given = generate(capsys, tiny_model_dir, tmp_path, "--device", "cpu")  # asked for the CPU: nothing to say
    assert (given.returncode, notes(given.stderr)) == (0, [])
    monkeypatch.setenv("STUDIO_DEVICE", device)  # the variable's device is said as the variable's
    by_variable = generate(capsys, tiny_model_dir, tmp_path)
    assert notes(by_variable.stderr) == [said.replace("The settings' device is", "STUDIO_DEVICE is")]
    assert devices_run == ["cpu", "cpu", "cpu"]


def test_a_settings_device_pytorch_has_says_nothing(studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                    devices_run):
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    settings = load_settings()
    settings.device = "cpu"
    save_settings(settings)
    done = generate(capsys, tiny_model_dir, tmp_path)
    assert (done.returncode, notes(done.stderr), devices_run) == (0, [], ["cpu"])


def test_rerun_runs_on_the_device_given_and_says_a_settings_device_pytorch_does_not_have(
        studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys, devices_run):
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryEntry, HistoryStore

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    settings = load_settings()
    settings.device = "cuda"
    save_settings(settings)
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2))
    store.close()
    rerun = ("history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png"), "--overwrite")

    done = studio_here(capsys, *rerun)
    assert (done.returncode, notes(done.stderr)) == (0, [
        "note: The settings' device is cuda, but no CUDA GPU is available to PyTorch here; the job runs on the CPU."])
    refused = studio_here(capsys, *rerun, "--device", "cuda")  # it ran on the CPU, silently
    assert (refused.returncode, refused.stderr) == (
        2, "studio: No CUDA GPU is available to PyTorch here; give --device cpu or auto.\n")
    assert devices_run == ["cpu"]


@pytest.mark.parametrize("written", ["bogus", "gpu"])
def test_a_studio_device_that_is_no_device_is_said_with_the_values_it_takes(
        studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys, devices_run, written):
    # STUDIO_DEVICE=bogus (or gpu) ran on the CPU without a word.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("STUDIO_DEVICE", written)
    done = generate(capsys, tiny_model_dir, tmp_path)
    assert (done.returncode, notes(done.stderr)) == (0, [
        f"note: STUDIO_DEVICE is '{written}', which is no device: it takes auto, cpu, cuda, cuda:N (the GPU numbered "
        "N) or mps; the job runs on the device Studio picks itself."])
    assert devices_run == ["cpu"]


@pytest.mark.parametrize(("written", "index"), [("CUDA", 0), ("cuda:1", 1), (" Cuda:0 ", 0)])
def test_studio_device_is_read_whatever_its_case_and_cuda_n_picks_that_gpu(monkeypatch, written, index):
    # CUDA and cuda:0 meant the CPU on a CUDA machine.
    from studio.engine.device import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda chosen: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda chosen: type("Props", (), {"name": f"GPU {chosen}", "total_memory": 8 * 2**30})())
    monkeypatch.setenv("STUDIO_DEVICE", written)
    device = select_device("auto")
    assert (device.kind, device.torch_device, device.note) == ("cuda", torch.device("cuda", index), "")
    assert device.description.startswith(f"CUDA · GPU {index} ")
    monkeypatch.setenv("STUDIO_DEVICE", "cuda:2")  # no third GPU: the first, said
    device = select_device("auto")
    assert device.torch_device == torch.device("cuda", 0)
    assert device.note == ("STUDIO_DEVICE is 'cuda:2', but PyTorch has 2 CUDA GPUs here (cuda:0 to cuda:1); the "
                           "first is used.")


def test_the_windows_engine_status_says_a_studio_device_that_is_no_device(tmp_path, monkeypatch):
    from studio.engine.diffusion import DiffusersGenerator
    from studio.core.environment import GeneratorEnvironment

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("STUDIO_DEVICE", "bogus")
    generator = DiffusersGenerator(GeneratorEnvironment("auto", tmp_path / "data", tmp_path / "cache"))
    statuses: list[dict] = []
    generator.warm_up(lambda **kwargs: statuses.append(kwargs))
    assert statuses[-1]["message"] == ("STUDIO_DEVICE is 'bogus', which is no device: it takes auto, cpu, cuda, "
                                       "cuda:N (the GPU numbered N) or mps, so Studio picks the device itself.")
    assert generator.device.kind == "cpu"


def pretend_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "set_device", lambda chosen: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda chosen: type("Props", (), {"name": f"GPU {chosen}", "total_memory": 8 * 2**30})())


def test_device_cuda_n_runs_on_that_gpu_and_one_pytorch_does_not_have_is_refused(
        studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys):
    # generate --device cuda:1 and history rerun --device cuda:1 were refused as not one of auto, cuda, mps, cpu
    # (STUDIO_DEVICE=cuda:1 was taken).
    from studio.core.paths import studio_paths
    from studio.engine.device import select_device
    from studio.services.history_store import HistoryEntry, HistoryStore

    ran: list[torch.device] = []

    async def generate_on(request, env, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ran.append(select_device(env.device).torch_device)
        return 0

    monkeypatch.setattr(studio.cli_job, "_generate", generate_on)
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    pretend_gpus(monkeypatch, 2)
    assert generate(capsys, tiny_model_dir, tmp_path, "--device", "CUDA:1").returncode == 0
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2))
    store.close()
    rerun = ("history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png"), "--overwrite")
    done = studio_here(capsys, *rerun, "--device", "cuda:1")
    assert done.returncode == 0, done.stderr
    assert ran == [torch.device("cuda", 1)] * 2
    for command in (["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "-o", str(tmp_path / "f.png"),
                     "--overwrite"], list(rerun)):
        refused = studio_here(capsys, *command, "--device", "cuda:2")
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2, "", "studio: PyTorch has 2 CUDA GPUs here, cuda:0 to cuda:1, so there is no cuda:2; give --device "
                   "cuda:0 or cuda.\n")
        unknown = studio_here(capsys, *command, "--device", "gpu1")
        assert unknown.returncode == 2
        assert unknown.stderr.endswith("error: argument --device: 'gpu1' is no device; it takes auto, cpu, cuda, "
                                       "cuda:N (the GPU numbered N) or mps\n"), unknown.stderr
    assert len(ran) == 2


def test_a_settings_device_cuda_n_is_kept_and_runs_there(studio_home, tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                         devices_run):
    # device = "cuda:1" in the settings file was refused as no device Studio has and took auto.
    from studio.core.paths import studio_paths

    paths = studio_paths()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text('device = "Cuda:1"\n')
    settings = load_settings()
    assert (settings.device, settings.load_note) == ("cuda:1", "")
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    pretend_gpus(monkeypatch, 1)
    done = generate(capsys, tiny_model_dir, tmp_path)
    assert (done.returncode, notes(done.stderr)) == (0, [
        "note: The settings' device is cuda:1, but PyTorch has 1 CUDA GPU here (cuda:0 to cuda:0); the job runs on "
        "the first."])
    assert devices_run == ["cuda"]
