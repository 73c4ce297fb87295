"""What is wrong with a LoRA chosen for the next generation, said before anything is queued: the LoRA box's
checks against the model library (no Qt here). A LoRA is found by name, file name or path; one the library lacks
is missing unless it is a file that is there, and one made for another family than the chosen model's is refused."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from studio.core.errors import InvalidRequest, StudioError
from studio.core.hashing import lora_hash, model_hash
from studio.core.metadata import LoraRecord
from studio.core.model_library import LibraryItem
from studio.core.outside_library import family_label, is_path, short_name
from studio.core.prompt_loras import tag_name, the_library_item
from studio.core.requests import LoraChoice

AUTO_V2_LENGTH = 10  # Studio recorded a LoRA's AutoV2 hash (of the whole file) before it recorded AutoV3's


class LoraLibrary:
    """The library's usable LoRAs and its checkpoints' families, and the chosen checkpoint."""

    def __init__(self) -> None:
        self.loras: list[LibraryItem] = []
        self.read = False  # before the first scan, no LoRA can be said to be missing
        self._families: dict[str, str] = {}  # checkpoint path -> family
        self.model = ""  # the chosen checkpoint (its path)

    def set_items(self, items: list[LibraryItem]) -> None:
        self.loras = [i for i in items if i.kind == "lora" and i.usable]
        self._families = {str(i.path): i.family for i in items if i.kind == "checkpoint"}
        self.read = True

    def family(self) -> str:
        """The chosen model's family ("" when it is not known)."""
        return self._families.get(self.model, "")

    def item(self, name: str) -> LibraryItem | None:
        """The library's LoRA of this name, file name or path: the same spelling first, then another case (as
        A1111 and the file systems of Windows and macOS find it), so "INK" and "ink" are one LoRA however it was
        added; the job is handed the file's path, which the engine finds on any system. Two LoRAs differing only in
        case are not guessed between (as the engine and the command line do not). Else the one LoRA with that alias
        (its ss_output_name, which A1111 tags and records it by when its "use alias" option is on)."""
        return the_library_item(name, self.loras, lambda item: (item.name, item.path.name, str(item.path)),
                                lambda item: item.alias)

    def library_path(self, name: str) -> str:
        """A recorded name ("ink", "ink.safetensors") as the library's file, when it has one of that name."""
        item = self.item(name)
        return str(item.path) if item is not None else name

    def found_by_hash(self, records: Iterable[LoraRecord], hash_cache: Path | None) -> dict[str, str]:
        """The library file (its path) of each recorded LoRA that no name or alias finds but the hash a picture
        recorded for it does (a LoRA renamed since), by its recorded name. Hashes the library's LoRAs (cached by
        size and modification time) only when a record is found no other way: call it in a worker thread."""
        found: dict[str, str] = {}
        for record in records:
            if record.hash and self.item(record.name) is None and (item := the_library_item(
                    record.name, self.loras, lambda _: (), lambda _: "", record.hash,
                    lambda item, digest=record.hash: _lora_hash(item.path, digest, hash_cache))) is not None:
                found[record.name] = str(item.path)
        return found

    def other_family(self, item: LibraryItem) -> str:
        """The family the LoRA is made for ("SDXL") when the chosen model is of another; "" when it fits or either is
        not known (the job checks the file then)."""
        family = self.family()
        return family_label(item.family) if family and item.family and item.family != family else ""

    def row_problem(self, name: str) -> tuple[str, str] | None:
        """What is wrong with a listed LoRA: its note in the list and the sentence that refuses Generate."""
        item = self.item(name)
        if item is not None:
            if other := self.other_family(item):
                model = family_label(self.family())
                return (f"for {other}", f"The LoRA {item.name} is made for {other} models and the chosen model is "
                        f"{model}; remove it from the list or choose a model of that kind.")
            return None
        if not self.read or is_file(name):  # a file outside the library: the job reads it as it is
            return None
        if is_path(name):
            return ("not found", f"The LoRA {short_name(name)} is not in the library any more ({name} was removed); "
                    "remove it from the list or put it back.")
        return ("not found", f"The LoRA {name} is not in the library; remove it from the list or add it to the "
                "library (Settings → Model Library…).")

    def check_tagged(self, tagged: tuple[LoraChoice, ...]) -> None:
        """InvalidRequest for a prompt tag naming a LoRA the library does not have."""
        for choice in tagged:
            if self.read and self.item(choice.name) is None and not is_file(choice.name):
                raise InvalidRequest(f"The prompt's {choice.tag} names the LoRA {tag_name(choice)}, which is not in "
                                     "the library; check its name, or add the LoRA to the library.")


def _lora_hash(path: Path, recorded: str, hash_cache: Path | None) -> str:
    """The file's hash in the recorded hash's kind (AutoV3, or the AutoV2 of the whole file Studio recorded
    before); "" for a file that cannot be read (it is not the one sought)."""
    try:
        return model_hash(path, hash_cache) if len(recorded) == AUTO_V2_LENGTH else lora_hash(path, hash_cache)
    except (OSError, StudioError):
        return ""


def is_file(name: str) -> bool:
    """A LoRA named by a path to a file that is there (a recorded or typed path outside the library)."""
    return is_path(name) and Path(name).expanduser().is_file()

