"""Linking ComfyUI's extra_model_paths.yaml, or a ComfyUI folder holding one: the folders it names are linked."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_files import lora, sd1
from studio.core.errors import InvalidRequest
from studio.services.model_links import link_paths


def comfyui(tmp_path: Path) -> tuple[Path, Path]:
    """A ComfyUI folder whose yaml names an A1111 drive's folders (one not there) and its own checkpoints."""
    comfy, drive = tmp_path / "ComfyUI", tmp_path / "drive" / "sdmodels"
    sd1(comfy / "models" / "checkpoints" / "comfy_model.safetensors")
    (comfy / "models" / "loras").mkdir()
    sd1(drive / "Stable-diffusion" / "extra_ckpt.safetensors")
    lora(drive / "Lora" / "ink.safetensors")
    (comfy / "extra_model_paths.yaml").write_text(f"""a111:
    base_path: {drive}
    checkpoints: Stable-diffusion
    loras: |
        Lora
        LyCORIS
comfyui:
    base_path: {comfy}/
    checkpoints: models/checkpoints/
""", encoding="utf-8")
    return comfy, drive


def test_the_yaml_links_each_folder_it_names_and_says_which_are_not_there(tmp_path):
    comfy, drive = comfyui(tmp_path)
    linking = link_paths(comfy / "extra_model_paths.yaml", [], tmp_path / "models")
    assert linking.added == linking.links == [drive / "Stable-diffusion", drive / "Lora",
                                              comfy / "models" / "checkpoints"]
    assert linking.notes == [f"{drive / 'LyCORIS'}, named in extra_model_paths.yaml, is not there, so it was not "
                             "linked."]
    again = link_paths(comfy / "extra_model_paths.yaml", linking.links, tmp_path / "models")
    assert again.added == [] and again.links == linking.links


def test_linking_the_comfyui_folder_links_the_folders_its_yaml_names_too(tmp_path):
    """The window's Link and the command line's: the yaml was ignored, and the other drive's models not listed."""
    comfy, drive = comfyui(tmp_path)
    links = link_paths(comfy, [tmp_path / "other"], tmp_path / "models").links
    # Its own models/checkpoints is in the linked folder already: not linked twice.
    assert links == [tmp_path / "other", comfy, drive / "Stable-diffusion", drive / "Lora"]


def test_a_yaml_naming_no_folder_that_is_there_links_nothing(tmp_path):
    (tmp_path / "extra_model_paths.yaml").write_text("a111:\n    base_path: /nowhere/sd\n    checkpoints: ckpts\n",
                                                     encoding="utf-8")
    with pytest.raises(InvalidRequest, match="^None of the model folders extra_model_paths.yaml names could be "
                                             "linked: /nowhere/sd/ckpts, named in"):
        link_paths(tmp_path / "extra_model_paths.yaml", [], tmp_path / "models")
