"""Pickle checkpoints (.ckpt/.pt/.pth/.bin) converted to safetensors by the engine, then imported as that, and
what the conversion left out, in sentences."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from studio.core.errors import ModelError, StudioError, os_reason
from studio.services.import_records import record_import
from studio.services.model_imports import ImportResult, import_model


def convert_and_import(source: Path, models_dir: Path, *, hash_cache: Path | None = None) -> ImportResult:
    """A pickle checkpoint (.ckpt/.pt/.pth/.bin), read with ``torch.load(weights_only=True)`` (tensors and plain
    containers only; anything else is refused unrun), written as safetensors and imported as that."""
    from studio.engine.convert import convert_to_safetensors  # torch: only when converting

    source = Path(source).expanduser()
    incoming = models_dir / ".incoming"  # hidden: the library never lists a half-converted file
    dest = incoming / f"{source.stem}.safetensors"
    try:
        incoming.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{source.name} could not be converted into {models_dir}: {os_reason(exc)}.") from exc
    try:
        done = convert_to_safetensors(source, dest)
        # What it left out is news however the import goes: on a refusal, as the error's notes.
        notes = conversion_notes(done.taken_from, done.beside, done.not_tensors)
        try:
            result = import_model(dest, models_dir, hash_cache=hash_cache, move=True,
                                  named=f"{source.name}, converted,")
        except StudioError as exc:
            for note in notes:
                exc.add_note(note)
            raise
    finally:
        dest.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            incoming.rmdir()
    if result.copied:
        result = replace(result, unrecorded=record_import(models_dir, result.item.path, source))
    # One sentence a line (as convert-weights says them), after the import's own ("already in the library as …").
    return replace(result, note="\n".join(filter(None, (result.note, *notes))))


def conversion_notes(taken_from: str | None, beside: Sequence[str], not_tensors: Sequence[str]) -> list[str]:
    """What a conversion to safetensors left out of a checkpoint, in sentences: the rest of it, where only the weights
    nested under ``taken_from`` ("state_dict") were written, and the values among the weights that are no tensors."""
    notes = []
    if taken_from is not None and beside:
        notes.append(f"Wrote only the weights under {taken_from!r}; left out the rest of the checkpoint: "
                     f"{_some(beside)}.")
    if not_tensors:
        count = len(not_tensors)
        kind = "value that is not a tensor" if count == 1 else "values that are not tensors"
        notes.append(f"Left out {count} {kind}: {_some(not_tensors)}.")
    return notes


def _some(names: Sequence[str], shown: int = 8) -> str:
    """A list a line can hold: the first few names, then how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
