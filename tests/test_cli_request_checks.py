"""``studio generate``'s request checks that come before the engine starts: each option that could not be used is
said as bad input (exit 2, one sentence), not run past."""

from __future__ import annotations


import pytest

from studio.cli_exit import EXIT_BAD_INPUT


@pytest.mark.parametrize(("device", "sentence"), [
    ("cuda", "No CUDA GPU is available to PyTorch here; give --device cpu or auto."),
    ("mps", "Apple's MPS (Metal) is not available to PyTorch here; give --device cpu or auto."),
])
def test_a_device_pytorch_does_not_have_is_refused_before_the_job(tiny_model_dir, studio_home, tmp_path,
                                                                  monkeypatch, capsys, device, sentence):
    # It ran on the CPU, silently, exit 0, where studio bench --device cuda refused.
    import torch

    import studio.cli_generate
    from studio.cli import main

    jobs: list[str] = []
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda request, env, *args, **kwargs: jobs.append(env.device)
                        or 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    argv = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "o.png")]
    assert main([*argv, "--device", device]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"studio: {sentence}\n"
    assert jobs == []  # the model was never loaded
    assert main([*argv, "--device", "cpu"]) == 0
    monkeypatch.setattr(torch.cuda if device == "cuda" else torch.backends.mps, "is_available", lambda: True)
    assert main([*argv, "--device", device]) == 0  # where PyTorch has it, the job runs there
    assert jobs == ["cpu", device]
