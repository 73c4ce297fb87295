"""The LoRA box's checks against the library (Qt-free): finding a LoRA by name in any case, as the engine does."""

from __future__ import annotations

from pathlib import Path

from studio.core.model_library import LibraryItem
from studio.ui.lora_checks import LoraLibrary


def _lora(path: Path) -> LibraryItem:
    return LibraryItem(path.stem, path, "lora", "sd1", "LoRA (SD 1.x)", 7, "models folder")


def test_a_name_in_another_case_finds_the_one_lora_it_names_but_never_guesses_between_two(tmp_path):
    library = LoraLibrary()
    ink, detail, other_detail = (_lora(tmp_path / name) for name in ("ink.safetensors", "Detail.safetensors",
                                                                     "detail.safetensors"))
    library.set_items([ink, detail, other_detail])
    assert library.item("INK") is ink and library.item("ink.safetensors") is ink
    assert library.item("Detail") is detail and library.item("detail") is other_detail  # the same spelling first
    assert library.item("DETAIL") is None  # two differ only in case: the engine and the command line refuse too
