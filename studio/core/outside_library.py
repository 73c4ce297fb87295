"""What a chosen model that is not in the model library is (a recipe's ControlNet or VAE given by its path), said as
soon as it is chosen rather than when a job is refused: a ControlNet elsewhere, a file of another kind, nothing there.

Reads what the library's scan reads (a file's header, a folder's configs); callers run it off the window's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.model_kind import FAMILY_LABELS, WANTED_KINDS, other_kind_sentence
from studio.core.model_library import item_for_file, item_for_folder

NOT_IN_LIBRARY = "not in the library"
LISTED_CHARS = 18  # of a long name listed with its note: the note must stay in sight in a narrow list


def listed_name(name: str, note: str) -> str:
    """"control_v11f1p_sd… (not found)": the name cut short enough that a narrow list still shows its note."""
    return f"{name if len(name) <= LISTED_CHARS else name[:LISTED_CHARS - 1] + '…'} ({note})"


def short_name(name: str) -> str:
    """The file's stem for a path (a folder's name for a folder), the name itself otherwise."""
    tail = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return tail[:-len(".safetensors")] if tail.endswith(".safetensors") else tail


def family_label(family: str) -> str:
    """"SD 1.x" for "sd1"; the family's own name when it has no label."""
    return FAMILY_LABELS.get(family, family or "unknown")


@dataclass(frozen=True)
class OutsideModel:
    note: str  # after the name in a list: "not in the library", "not found", "not a ControlNet"
    problem: str = ""  # why a job cannot use it, in a sentence; "" when it can (as far as the files say)


def is_path(value: str) -> bool:
    """Whether ``value`` names a file or folder by its path (else a name in the models folder)."""
    given = Path(value).expanduser()
    return given.is_absolute() or len(given.parts) > 1


def outside_model(value: str, wanted: str) -> OutsideModel:
    """``value``, a name or path not in the library, as a model of the ``wanted`` kind (a WANTED_KINDS key). A bare
    name is looked for in the models folder, which the library lists already: nothing is read for it."""
    if not is_path(value):
        return OutsideModel(NOT_IN_LIBRARY)
    given = Path(value).expanduser()
    name, what = given.name, WANTED_KINDS[wanted]
    if not given.exists():
        return OutsideModel("not found", f"{name} was not found in {given.parent}.")
    item = item_for_folder(given, "given") if given.is_dir() else item_for_file(given, "given")
    if item.kind == wanted:
        return OutsideModel(NOT_IN_LIBRARY, item.problem)
    if item.kind == "unknown":  # unreadable, a pickle, or nothing Studio knows
        return OutsideModel("unusable" if item.problem else f"not {what}",
                            item.problem or f"{name} is not {what}; choose {what} here.")
    return OutsideModel(f"not {what}", other_kind_sentence(name, item.kind, item.label, wanted))
