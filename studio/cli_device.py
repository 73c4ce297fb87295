"""Which device a ``studio`` job runs on, and what is said where that is not the one asked for: ``--device`` typed
for the command comes first, then the STUDIO_DEVICE environment variable, then the settings' device; one that
PyTorch does not have here runs on the CPU, and a note says so (``--device`` itself is refused then:
check_device)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from studio.core.errors import InvalidRequest
from studio.core.settings_checks import DEVICE_VALUES, parse_device

DEVICE_ENV = "STUDIO_DEVICE"  # read by the engine (studio.engine.device.select_device) before the given device


def device_option(text: str) -> str:
    """``--device``'s value, as STUDIO_DEVICE takes it (``cuda:1``: the GPU numbered 1), in any case."""
    if parse_device(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is no device; it takes {DEVICE_VALUES}")
    return text.strip().lower()


def check_device(device: str | None) -> None:
    """``--device cuda`` (or ``cuda:N``, or ``mps``) where PyTorch has no such device is bad input, as ``studio
    bench`` says it: the engine would run the job on the CPU (or the first GPU), silently, for minutes where seconds
    were expected."""
    kind, index = parse_device(device or "auto") or ("auto", 0)
    if kind not in ("cuda", "mps"):
        return
    import torch  # the job loads it next

    if kind == "cuda" and not torch.cuda.is_available():
        raise InvalidRequest("No CUDA GPU is available to PyTorch here; give --device cpu or auto.")
    if kind == "cuda" and index and index >= (count := torch.cuda.device_count()):  # cuda:0 is there with CUDA
        raise InvalidRequest(f"PyTorch has {count} CUDA GPU{'s' * (count != 1)} here, cuda:0 to cuda:{count - 1}, "
                             f"so there is no {device}; give --device cuda:0 or cuda.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InvalidRequest("Apple's MPS (Metal) is not available to PyTorch here; give --device cpu or auto.")


@contextmanager
def device_given(device: str | None) -> Iterator[None]:
    """The job runs on ``device`` (``--device``) where one is given, even where STUDIO_DEVICE names another: the
    engine reads that variable first, so it is set to the option for the job and put back after it."""
    if device is None:
        yield
        return
    before = os.environ.get(DEVICE_ENV)
    os.environ[DEVICE_ENV] = device
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DEVICE_ENV, None)
        else:
            os.environ[DEVICE_ENV] = before


def device_fallback_note(given: str | None, settings_device: str) -> str | None:
    """Where the device the job is to run on comes from STUDIO_DEVICE or the settings (no ``--device``) and PyTorch
    has no such device here, or STUDIO_DEVICE names no device: the sentence that says what the job runs on
    instead, not left to be wondered at."""
    if given is not None:
        return None
    from_env = os.environ.get(DEVICE_ENV, "")
    device, source = (from_env, f"{DEVICE_ENV} is") if from_env else (settings_device, "The settings' device is")
    parsed = parse_device(device)
    if parsed is None:
        return (f"{DEVICE_ENV} is {device!r}, which is no device: it takes {DEVICE_VALUES}; the job runs on the "
                f"device Studio picks itself.")
    import torch  # the job loads it next

    kind, index = parsed
    if kind == "cuda" and not torch.cuda.is_available():
        return f"{source} {device}, but no CUDA GPU is available to PyTorch here; the job runs on the CPU."
    if kind == "cuda" and index and index >= (count := torch.cuda.device_count()):  # cuda:0 is there with CUDA
        return (f"{source} {device}, but PyTorch has {count} CUDA GPU{'s' * (count != 1)} here (cuda:0 to "
                f"cuda:{count - 1}); the job runs on the first.")
    if kind == "mps" and not torch.backends.mps.is_available():
        return f"{source} {device}, but Apple's MPS (Metal) is not available to PyTorch here; the job runs on the CPU."
    return None
