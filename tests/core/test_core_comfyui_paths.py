"""ComfyUI's extra_model_paths.yaml read as ComfyUI reads it."""

from __future__ import annotations

import re

import pytest

from studio.core.comfyui_paths import read_extra_model_paths
from studio.core.errors import InvalidRequest


def test_each_sections_folders_are_read_relative_to_its_base_path_one_a_line(tmp_path, monkeypatch):
    drive = tmp_path / "drive"
    for folder in ("sd/Stable-diffusion", "sd/Lora", "sd/LyCORIS", "comfy/models/vae", "here/ckpts", "home/emb"):
        (drive / folder).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(drive / "home"))
    yaml_file = drive / "here" / "extra_model_paths.yaml"
    yaml_file.write_text(f"""
a111:
    base_path: {drive / "sd"}
    checkpoints: Stable-diffusion
    configs: models/Stable-diffusion
    loras: |
        Lora
        LyCORIS
    controlnet: models/ControlNet
comfyui:
    base_path: ../comfy/
    is_default: true
    vae: models/vae/
    custom_nodes: custom_nodes/
no_base:
    checkpoints: ckpts
    embeddings: ~/emb
empty:
""", encoding="utf-8")
    found = read_extra_model_paths(yaml_file)
    assert found.folders == [drive / "sd/Stable-diffusion", drive / "sd/Lora", drive / "sd/LyCORIS",
                             drive / "comfy/models/vae", drive / "here/ckpts"]
    assert found.missing == [drive / "sd/models/ControlNet", drive / "here/~/emb"]  # ~ only in base_path, as ComfyUI


@pytest.mark.parametrize(("text", "said"), [
    ("a: [\n", "extra_model_paths.yaml is not a YAML file ComfyUI could read (line 2)"),
    ("- a\n- b\n", "extra_model_paths.yaml names no model folders"),
])
def test_a_file_that_is_no_extra_model_paths_yaml_is_one_sentence(tmp_path, text, said):
    yaml_file = tmp_path / "extra_model_paths.yaml"
    yaml_file.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRequest, match="^" + re.escape(f"{tmp_path}/{said}")):  # the file's whole path
        read_extra_model_paths(yaml_file)
