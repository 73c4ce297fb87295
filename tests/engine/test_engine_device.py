"""How the CPU is used: torch's thread count leaves a core to the window unless the person says otherwise."""

from __future__ import annotations

import os

import pytest
import torch

from studio.core.errors import StudioError
from studio.engine.device import CPU_THREADS_ENV, cpu_threads, select_device


def test_all_cores_but_one_unless_studio_cpu_threads_says_otherwise():
    assert cpu_threads(8, environ={}) == 7
    assert cpu_threads(1, environ={}) == 1
    assert cpu_threads(2, environ={CPU_THREADS_ENV: "2"}) == 2
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(StudioError, match="STUDIO_CPU_THREADS must be a whole number of threads"):
            cpu_threads(8, environ={CPU_THREADS_ENV: bad})


def test_the_cpu_device_applies_it_and_the_status_bar_says_it(monkeypatch):  # noqa: ANN001
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(CPU_THREADS_ENV, "3")
        assert select_device("cpu").description.startswith("CPU · 3 threads · ")
        assert torch.get_num_threads() == 3
        monkeypatch.delenv(CPU_THREADS_ENV)
        select_device("cpu")
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) - 1)
    finally:
        torch.set_num_threads(before)
