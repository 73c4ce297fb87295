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


def test_a_lora_is_found_by_its_alias_as_a1111_tags_it_when_no_name_matches(tmp_path):
    # A1111's "use alias" option tags a LoRA <lora:zelda_v2:…> by its ss_output_name; the box said "The LoRA
    # zelda_v2 is not in the library" of princess_zelda.safetensors, whose alias that is.
    from dataclasses import replace

    library = LoraLibrary()
    zelda = replace(_lora(tmp_path / "princess_zelda.safetensors"), alias="zelda_v2")
    ink = replace(_lora(tmp_path / "ink.safetensors"), alias="zelda_v2_old")
    named = replace(_lora(tmp_path / "zelda_v3.safetensors"), alias="")
    library.set_items([zelda, ink, named])
    assert library.item("zelda_v2") is zelda and library.item("ZELDA_V2") is zelda
    assert library.library_path("zelda_v2") == str(zelda.path)
    assert library.row_problem("zelda_v2") is None
    library.set_items([replace(ink, alias="zelda_v3"), named])
    assert library.item("zelda_v3") is named  # a name goes before another file's alias
    library.set_items([zelda, replace(ink, alias="zelda_v2")])
    assert library.item("zelda_v2") is None  # two with that alias: not guessed between
