"""Keeping the models switched away from, so that switching back costs nearly nothing.

People go back and forth between models (a photographic one, an illustrative one, an SD 1.5 finetune and SDXL),
as ComfyUI, InvokeAI and AUTOMATIC1111 let them without a reload. Studio keeps up to ``KEEP_AT_MOST`` models
before the current one loaded, where they are, with their merged LoRAs, most recent first: switching back reads
no file and copies no weights. On a GPU their captured steps go (their memory pool is no use to another model).
Keeping never costs a job anything: on the GPU the job's memory plan lets kept models go, the oldest first, before
taking any measure (job_memory.py), and in system memory they are kept only while the next model still leaves a
reserve free (the oldest goes first).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import json

from studio.core.errors import ModelError, StudioError
from studio.core.models import check_model_folder
from studio.core.weight_files import check_weights_file, numbers_in
from studio.engine.device import DeviceInfo
from studio.engine.memory import GIB, borrowed_weights, model_bytes

RAM_RESERVE_SHARE = 0.2  # of the machine's memory, left free for the window, the OS and the job itself
RAM_RESERVE_MIN = 2 * GIB
# Models kept besides the one in use. Memory bounds them anyway; this bounds what an idle Studio holds of a GPU
# that other programs share (four SDXL models in float16 are 28 GB).
KEEP_AT_MOST = 3


REMOVED_NOTE = ("The model {name}'s files were removed since it was loaded; this job's pictures were made from the "
                "copy in memory.")
DAMAGED_NOTE = ("The model {name}'s files changed since it was loaded and cannot be read: {problem} This job's "
                "pictures were made from the copy in memory.")


def in_system_memory(model: Any) -> bool:  # noqa: ANN401 - a LoadedModel
    """Whether the model's weights take system memory: on the CPU (or not placed yet), or on Apple's GPU, whose
    memory is the system's. Otherwise they are in a CUDA GPU's own memory."""
    unet = getattr(model.text2img, "unet", None)
    first = next(unet.parameters(), None) if hasattr(unet, "parameters") else None
    return first is None or first.device.type in ("cpu", "mps")


def in_precision(model: Any, device: DeviceInfo) -> bool:  # noqa: ANN401 - a LoadedModel
    """Whether the loaded model computes in the precision jobs on ``device`` use now (on the CPU the Speed
    setting picks it: cpu_precision). A stand-in without a UNet is taken as it is."""
    unet = getattr(model.text2img, "unet", None)
    return getattr(unet, "dtype", device.dtype) == device.dtype


def weight_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.safetensors"))


# What loading a diffusers folder reads: weights, configs (model_index.json, each part's config.json, the
# scheduler's) and tokenizer files (vocab.json, merges.txt).
LOADED_SUFFIXES = (".safetensors", ".json", ".txt")


def loaded_files(path: Path) -> list[Path]:
    """The files a model is loaded from: a single file, or a folder's weights, configs and tokenizer files (its
    hidden folders, such as a download's cache, aside)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in LOADED_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(path).parts[:-1]))


# Each file loaded: (path, size, modification time in ns, inode).
ModelStamp = tuple[tuple[str, int, int, int], ...]


def model_files_key(path: Path) -> ModelStamp:
    """The stamp of a model's files as they are on disk (stat calls only: 0.6 ms for the tiny test model's 10
    files, 1.1 ms for a folder of 20, on a busy 2-core machine): a model whose files changed since it was loaded
    (a new download or conversion under the same name) is read again, the one in use before its next job and a
    kept one instead of being switched back to. () when the model is gone (or went while being looked at)."""
    try:
        return tuple((str(f), (stat := f.stat()).st_size, stat.st_mtime_ns, stat.st_ino) for f in loaded_files(path))
    except OSError:
        return ()


def changed_in_place(loaded: ModelStamp, now: ModelStamp) -> list[str]:
    """The names of the files rewritten in place (the same inode, another size or time) since ``loaded``. A
    model's CPU weights may be pages of its weight files (safetensors maps them): a file replaced or removed
    leaves those pages as they were, one rewritten in place does not, so its copy in memory is no longer whole
    (``borrowed_weights`` says whether any are such pages)."""
    inodes = {ino: (name, size, mtime) for name, size, mtime, ino in loaded if name.endswith(".safetensors")}
    return [Path(name).name for name, size, mtime, ino in now
            if ino in inodes and inodes[ino][0] == name and inodes[ino][1:] != (size, mtime)]


def not_whole(model: Any, files: ModelStamp) -> list[str]:  # noqa: ANN401 - a LoadedModel
    """The weight files rewritten in place since ``model`` was loaded where some of its weights in memory are
    still their pages, so the copy in memory is not whole either; [] where it is whole."""
    rewritten = changed_in_place(model.files_key, files)
    return rewritten if rewritten and next(borrowed_weights(model.text2img), None) is not None else []


def sentence(text: str) -> str:
    return text if text.endswith(".") else f"{text}."


def unreadable(path: Path) -> str | None:
    """Why the model's files cannot be loaded as they are now (a sentence), or None where they look whole: its
    folder, each weight file's header against its size, and each config's JSON are checked; no weights are read."""
    try:
        check_model_folder(path)
        files = loaded_files(path)
    except (ModelError, OSError) as exc:
        return str(exc)
    for file in files:
        try:
            if file.suffix == ".safetensors":
                check_weights_file(file)
            elif file.suffix == ".json":
                json.loads(file.read_text(encoding="utf-8"))
        except ModelError as exc:
            return str(exc)
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            return f"{file.name} of {path.name} could not be read: {exc}."
    return None


def note_from_memory(model: Any, path: Path, files: ModelStamp) -> str | None:  # noqa: ANN401 - a LoadedModel
    """Whether a job runs on ``model``, whose files at ``path`` are ``files`` now, no longer what it was loaded
    from: None where they can be loaded again (they are: the picture and its hash are then theirs). Where they
    were removed or damaged, the copy in memory is all there is of the model and what its recorded hash is of:
    the note the job gives (``REMOVED_NOTE``, ``DAMAGED_NOTE``). ModelError where damaged files were rewritten in
    place and some of its weights are still their pages (``not_whole``): the copy in memory is not whole either."""
    if not path.exists():
        return REMOVED_NOTE.format(name=model.name)
    problem = unreadable(path)
    if problem is None:
        return None
    problem = sentence(problem)
    if rewritten := not_whole(model, files):
        raise ModelError(f"The model {model.name} changed on disk and cannot be read: {problem} "
                         f"{', '.join(rewritten)} was rewritten in place, so the copy in memory is not whole "
                         "either. Put a whole copy of the model back and generate again.")
    return DAMAGED_NOTE.format(name=model.name, problem=problem)


def numbers_in_model(path: Path) -> int:
    """The numbers a model's safetensors files hold (an upper bound: a folder may hold two variants)."""
    try:
        return numbers_in(weight_files(path))
    except (StudioError, OSError):
        return 0  # the load itself says what is wrong with the file


def available_ram() -> tuple[int, int]:
    """(available, total) bytes of system memory."""
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.available), int(memory.total)


def system_memory_short(next_model: Path, device: DeviceInfo,
                        ram: Callable[[], tuple[int, int]] | None = None) -> int:
    """Bytes of system memory missing for loading ``next_model`` in the device's precision and still leaving the
    reserve free (0 or less: none missing)."""
    available, total = (ram or available_ram)()
    needed = numbers_in_model(next_model) * device.dtype.itemsize
    return max(RAM_RESERVE_SHARE * total, RAM_RESERVE_MIN) - (available - needed)


class KeptModels:
    """The models switched away from, still loaded, most recent first (``LoadedModel`` each).

    Every method that lets models go returns them: the caller drops its last references and hands their memory
    back (``device.free_memory``), since a collection only frees what nothing refers to.
    """

    def __init__(self, at_most: int = KEEP_AT_MOST) -> None:
        self._at_most = at_most
        self._models: list[Any] = []

    @property
    def models(self) -> tuple[Any, ...]:
        return tuple(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def take(self, path: Path, files: ModelStamp,
             device: DeviceInfo) -> tuple[Any | None, list[Any], str | None]:
        """The kept model of ``path`` in the precision ``device`` computes in, taken out (or None), the kept
        copies of ``path`` whose files have changed since (a new download or conversion), let go, and the note
        the job gives where the model taken runs from memory (or None). A copy in another precision stays (the
        CPU's Speed setting switches between two). Where ``path`` was removed or its files were damaged, the
        copy in memory is all there is of the model and it is taken where it is whole, as the model in use runs
        on (``note_from_memory`` decides both); one not whole is let go."""
        same = [m for m in self._models if m.path == path]
        found = next((m for m in same if m.files_key == files and in_precision(m, device)), None)
        changed = [m for m in same if m.files_key != files]
        if found is not None or not changed:
            self._models = [m for m in self._models if m is not found and not any(m is c for c in changed)]
            return found, changed, None
        stale, note = [], None
        for model in changed:
            try:
                said = note_from_memory(model, path, files)
            except ModelError:  # not whole: of no use to switch back to
                stale.append(model)
                continue
            if said is None:  # files that load: the copies of what they held before are no use
                self._models = [m for m in self._models if not any(m is c for c in changed)]
                return None, changed, None
            if found is None and in_precision(model, device):
                found, note = model, said
        self._models = [m for m in self._models if m is not found and not any(m is s for s in stale)]
        return found, stale, note

    def keep(self, model: Any) -> list[Any]:  # noqa: ANN401 - a LoadedModel
        """Put ``model`` first; returns the models let go: an offloaded one (Low VRAM: its weights are in system
        memory already) and the oldest past ``KEEP_AT_MOST``."""
        if model.offloaded:
            return [model]
        self._models.insert(0, model)
        let_go, self._models = self._models[self._at_most:], self._models[:self._at_most]
        return let_go

    def make_room(self, next_model: Path, device: DeviceInfo,
                  ram: Callable[[], tuple[int, int]] | None = None) -> list[Any]:
        """Let go the kept models in system memory, the oldest first, until loading ``next_model`` leaves the
        reserve free; returns them. Swapping would cost more than reading a file again. On a CUDA GPU they stay:
        the next job's memory plan lets them go if it needs their room (``let_oldest_on_gpu_go``)."""
        in_ram = [m for m in self._models if in_system_memory(m)]
        if not in_ram:
            return []
        short, let_go = system_memory_short(next_model, device, ram), []
        for model in reversed(in_ram):
            if short <= 0:
                break
            let_go.append(model)
            short -= model_bytes(model.text2img)
        self._models = [m for m in self._models if not any(m is g for g in let_go)]
        return let_go

    def let_oldest_on_gpu_go(self) -> Any | None:  # noqa: ANN401 - a LoadedModel
        """The oldest kept model in a GPU's own memory, let go (None when there is none)."""
        oldest = next((m for m in reversed(self._models) if not in_system_memory(m)), None)
        self._models = [m for m in self._models if m is not oldest]
        return oldest

    def let_all_go(self) -> list[Any]:
        let_go, self._models = self._models, []
        return let_go
