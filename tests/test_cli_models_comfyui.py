"""``studio models link`` of ComfyUI's extra_model_paths.yaml, in a subprocess, as a person runs it."""

from __future__ import annotations

import json

from model_files import sd1
from studio_testing import run_studio_commands


def test_linking_extra_model_paths_yaml_links_the_folders_it_names(tmp_path):
    """It said "extra_model_paths.yaml is not a safetensors file … Nothing was linked." and exited 2."""
    home, drive = tmp_path / "studio-home", tmp_path / "sdmodels"
    sd1(drive / "Stable-diffusion" / "extra_ckpt.safetensors")
    yaml_file = tmp_path / "ComfyUI" / "extra_model_paths.yaml"
    yaml_file.parent.mkdir()
    yaml_file.write_text(f"a111:\n    base_path: {drive}\n    checkpoints: Stable-diffusion\n    loras: Lora\n",
                         encoding="utf-8")
    linked, listed = run_studio_commands(home, ["models", "link", str(yaml_file)], ["models", "list", "--json"])
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout == (f"Linked {drive / 'Stable-diffusion'} (named in extra_model_paths.yaml): 1 usable "
                             "model(s) found there.\n")
    assert f"{drive / 'Lora'}, named in extra_model_paths.yaml, is not there, so it was not linked." in linked.stderr
    assert [item["name"] for item in json.loads(listed.stdout)] == ["extra_ckpt"]
