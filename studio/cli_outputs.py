"""Where the ``studio`` commands write their pictures (``-o``): the file names of a batch, and the checks made before
any work, so that nothing a person has is written over without asking (``--overwrite``), and never a picture the
command reads or one Studio's history keeps."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import InvalidRequest, StudioError, and_list
from studio.core.images import SAVE_FORMATS, save_image, unusable_path
from studio.core.parameters import ImageParam
from studio.plugin_host.registry import Registry

if TYPE_CHECKING:
    from PIL import Image

    from studio.core.metadata import Recipe
    from studio.services.history_store import HistoryStore

OVERWRITE_HELP = ("replace an output file that exists already (never a picture this command reads, nor one "
                  "Studio's history keeps)")


def add_output_flags(parser: argparse.ArgumentParser, batch: bool = False) -> None:
    """``-o FILE`` and ``--overwrite``. ``batch``: the command may write several pictures, named after FILE."""
    named = "; several pictures are written as NAME-1, NAME-2, …" if batch else ""
    parser.add_argument("-o", "--output", type=Path, required=True, help=f"output file (.png, .jpg or .webp){named}")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i + 1}{output.suffix}") for i in range(count)]


def check_output(output: Path) -> None:
    """Refuse, before any work, an output that could not be written once the picture is made."""
    try:
        if output.is_dir():  # first: a folder named without .png was said to lack the extension, not to be a folder
            raise InvalidRequest(f"The output {output} is a folder; name a file in it.")
        if output.suffix.lower() not in SAVE_FORMATS:
            raise InvalidRequest(f"The output {output.name!r} must end in .png, .jpg or .webp.")
        _check_output_place(output)
    except OSError as exc:  # a name the system will not even look at (too long): one sentence, not a traceback
        raise InvalidRequest(unusable_path(output, exc)) from None


def _check_output_place(output: Path) -> None:
    folder = output.parent.resolve()
    if folder.exists() and not folder.is_dir():
        raise InvalidRequest(f"The output folder {output.parent} is a file, not a folder.")
    if not folder.is_dir():
        raise InvalidRequest(f"The output folder {output.parent} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidRequest(f"Studio may not write into the output folder {output.parent} (permission denied).")


def check_outputs(outputs: Sequence[Path], *, overwrite: bool, reads: Iterable[tuple[str, Path]],
                  outputs_dir: Path, history: HistoryStore | None = None) -> None:
    """Refuse, before any work, outputs that would write over what should stay: a file that exists (unless
    ``overwrite``), and even then a picture the command reads (``reads``: what it is, as a sentence names it, and its
    file) or one the history keeps (in ``outputs_dir``; ``history``: the store open already, if any)."""
    for output in outputs:
        check_output(output)
    reads = [(what, path) for what, path in reads if os.path.exists(path)]  # a name too long: refused on reading
    for output in outputs:
        for what, path in reads:
            if _same_file(output, path):
                raise InvalidRequest(f"{output} is {what}, which this command reads; Studio does not write over it, "
                                     "even with --overwrite: give another -o.")
    kept = _kept_by_history(outputs, outputs_dir, history)
    if kept:
        raise InvalidRequest(f"{kept[0]} is a picture Studio's history keeps; Studio does not write over it, even "
                             "with --overwrite (its entry would show another picture): give another -o.")
    existing = [str(output) for output in outputs if os.path.lexists(output)]
    if existing and not overwrite:
        one = len(existing) == 1
        raise InvalidRequest(f"{and_list(existing)} {'already exists' if one else 'already exist'}; give another -o "
                             f"or add --overwrite to replace {'it' if one else 'them'}.")


def check_convert_output(source: Path, dest: Path, *, overwrite: bool) -> None:
    """Refuse, before the checkpoint is read, a ``convert-weights`` OUT that could not be written or would replace
    what should stay: a folder, a name without .safetensors, a folder that does not exist, the checkpoint IN itself
    (even with ``overwrite``), or a file that exists (unless ``overwrite``)."""
    if dest.is_dir():
        raise InvalidRequest(f"The output {dest} is a folder; give a file name ending in .safetensors.")
    if dest.name.lower() == ".safetensors":  # a dot-file to Path, whose suffix is then ""
        raise InvalidRequest(f"The output {dest} is only an extension; give a file name before it, "
                             "such as model.safetensors.")
    if dest.suffix.lower() != ".safetensors":
        raise InvalidRequest(f"The output {dest.name!r} must end in .safetensors.")
    if source.exists() and _same_file(dest, source):
        raise InvalidRequest(f"{dest} is the checkpoint this command reads; Studio does not write over it, even "
                             "with --overwrite: give another OUT.")
    try:
        _check_output_place(dest)
    except OSError as exc:  # a name the system will not even look at (too long): one sentence, not a traceback
        raise InvalidRequest(unusable_path(dest, exc)) from None
    if os.path.lexists(dest) and not overwrite:
        raise InvalidRequest(f"{dest} already exists; give another OUT or add --overwrite to replace it.")


def _same_file(output: Path, path: Path) -> bool:
    try:
        return os.path.samefile(output, path)
    except OSError:  # the output is not there (yet): the same name, links followed
        return output.resolve() == path.resolve()


def _kept_by_history(outputs: Sequence[Path], outputs_dir: Path, history: HistoryStore | None) -> list[Path]:
    """The outputs that name a file a history entry points at: only files in the outputs folder can be, so the
    history is opened (for reading) only for those."""
    root = outputs_dir.expanduser()
    inside = [output for output in outputs if output.resolve().is_relative_to(root.resolve())]
    if not inside:
        return []
    names: dict[str, Path] = {}  # each way the history may have recorded it: through links or not
    for output in inside:
        in_root = root.absolute() / output.resolve().relative_to(root.resolve())
        for name in (output.absolute(), output.resolve(), in_root):
            names.setdefault(str(name), output)
    from studio.cli_history import open_history
    from studio.services.history_errors import HistoryError
    from studio.services.history_store import default_history_path

    if history is None and not default_history_path().is_file():  # none yet: it keeps nothing (and is not made)
        return []
    try:
        store = history if history is not None else open_history(for_reading=True)
    except HistoryError:  # no history to ask (a job then says so): nothing it keeps is known
        return []
    try:
        recorded = store.recorded_files(list(names))
    finally:
        if history is None:  # only read: never waits for another program's lock (the job's own close says the rest)
            store.close(wait_for_pending=0)
    return list(dict.fromkeys(names[name] for name in names if name in recorded))


def keep_somewhere_else(image: Image.Image, recipe: Recipe, output: Path,
                        other_text: Mapping[str, str] | None = None) -> Path | None:
    """Where a picture that could be written neither to its -o file nor to the outputs folder (a full disk) is
    kept instead: a PNG in the system's temporary folder (often another disk), named after the -o file; None where
    that fails too."""
    import tempfile

    try:
        handle, name = tempfile.mkstemp(prefix=f"studio-{output.stem[:60]}-", suffix=".png")
    except OSError:
        return None
    os.close(handle)
    try:
        return save_image(image, name, recipe, other_text=other_text)
    except (StudioError, OSError):
        Path(name).unlink(missing_ok=True)
        return None


def param_pictures(values: Mapping[str, Any], registry: Registry, kind: str, id: str) -> list[tuple[ImageParam, Path]]:
    """The picture files given to a generator's or post-processor's parameters, with their parameters (a sentence
    names them as the command takes them)."""
    if not registry.has(kind, id):  # not installed: the job is refused for that
        return []
    return [(param, Path(value).expanduser()) for param in registry.get(kind, id).parameters
            if isinstance(param, ImageParam) and isinstance(value := values.get(param.name), str) and value]
