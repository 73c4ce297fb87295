"""Putting style-transfer weights in place from a file the person has: checked, and converted only on request.

A safetensors file is checked against the architecture and copied in; a pickle checkpoint is read
only by the explicit conversion (``torch.load(weights_only=True)``) and only when asked for.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import ModelError, StudioError
from studio.core.style_weights import (
    ADAIN_DECODER_FILE,
    ADAIN_VGG_FILE,
    VGG19_FILE,
    WEIGHTS,
    style_weights_dir,
)
from studio.core.temp_files import temp_file_beside
from studio.engine.convert import is_safetensors
from studio.engine.style.weights import load_checked


def check_weights(name: str, path: Path) -> None:
    """ModelError naming the file when it does not hold the tensors ``name`` needs, with the right shapes."""
    if name == VGG19_FILE:
        from studio.engine.style.neural import CONTENT_TAP, STYLE_TAPS
        from studio.engine.style.vgg import VGGFeatures

        with torch.device("meta"):
            expected = VGGFeatures(last=max(*STYLE_TAPS, CONTENT_TAP)).expected_shapes()
        load_checked(path, expected, "a VGG-19", prefixes=("features.", ""))
        return
    from studio.engine.style.adain import adain_decoder, adain_encoder

    build, what = {ADAIN_VGG_FILE: (adain_encoder, "an AdaIN encoder (vgg_normalised)"),
                   ADAIN_DECODER_FILE: (adain_decoder, "an AdaIN decoder")}[name]
    with torch.device("meta"):
        module = build()
    load_checked(path, {k: tuple(v.shape) for k, v in module.state_dict().items()}, what)


def import_weights(env: GeneratorEnvironment, name: str, source: Path, convert: bool = False) -> Path:
    """``source`` checked and put in the style folder as ``name``; a pickle only with ``convert=True``."""
    return install_weights(style_weights_dir(env), name, source, convert)


def install_weights(folder: Path, name: str, source: Path, convert: bool = False) -> Path:
    """``source`` checked and put in ``folder`` as ``name``, atomically; a pickle only with ``convert=True``."""
    if name not in {w.name for w in WEIGHTS}:
        raise StudioError(f"Studio has no style weights called {name!r}.")
    if not source.is_file():
        raise StudioError(f"There is no file at {source}.")
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = temp_file_beside(folder / name)
    os.close(fd)
    try:
        if is_safetensors(source):
            check_weights(name, source)  # the person's file is the one named when it does not fit
            shutil.copyfile(source, temp)
        elif source.suffix.lower() == ".safetensors":
            raise ModelError(f"{source.name} is named .safetensors but is not a safetensors file; it was not used.")
        elif not _looks_like_checkpoint(source):
            raise ModelError(f"{source.name} is not a weights file (neither safetensors nor a PyTorch checkpoint); "
                             "it was not used.")
        elif not convert:
            raise ModelError(f"{source.name} is a PyTorch checkpoint, which can hold code; convert it to safetensors "
                             "first (Studio reads it with torch.load(weights_only=True), tensors only).")
        else:
            from studio.engine.convert import convert_to_safetensors

            convert_to_safetensors(source, Path(temp))
            try:
                check_weights(name, Path(temp))
            except ModelError as exc:  # name the person's file, not the temporary conversion
                raise ModelError(str(exc).replace(temp, str(source), 1)) from None
        os.replace(temp, folder / name)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return folder / name


def _looks_like_checkpoint(path: Path) -> bool:
    """Whether the file starts as torch.save writes: a zip archive (PyTorch 1.6 and later) or a pickle (protocol 2
    or later, the legacy format). Said of any other file, "a PyTorch checkpoint" misled (a picture, a text)."""
    with path.open("rb") as file:
        head = file.read(4)
    return head == b"PK\x03\x04" or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)
