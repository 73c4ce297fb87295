"""How an add-on's weights are named in recipes and in the sentence when none is found."""

from pathlib import Path

from studio.engine.addon_names import in_linked_folders, recorded_name


def test_a_recorded_name_is_the_path_inside_the_folder_without_safetensors(tmp_path: Path):
    folder = tmp_path / "loras"
    assert recorded_name(folder, folder / "styles" / "ink.safetensors") == "styles/ink"
    assert recorded_name(folder, tmp_path / "elsewhere" / "ink.safetensors") == "ink"  # outside: its own name
    assert recorded_name(folder, folder / "canny") == "canny"  # a folder


def test_the_linked_folders_end_the_sentence_only_where_there_are_some(tmp_path: Path):
    assert in_linked_folders("a VAE of that name", []) == ""
    assert in_linked_folders("a VAE of that name", [tmp_path / "a"]) == \
        f", and for a VAE of that name in the linked folder {tmp_path / 'a'}"
    assert in_linked_folders("a LoRA", [Path("/x"), Path("/y")]) == ", and for a LoRA in the linked folders /x, /y"
