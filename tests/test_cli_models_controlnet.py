"""``studio models import`` and ``list`` with ControlNets: they go to ``<models>/controlnet`` and list by family."""

from __future__ import annotations

import json

from model_files import controlnet
from studio_testing import run_studio_commands


def test_controlnets_are_imported_into_their_folder_and_listed_with_their_family(tmp_path):
    home = tmp_path / "studio-home"
    canny = controlnet(tmp_path / "Downloads" / "control_v11p_sd15_canny.safetensors")
    canny_xl = controlnet(tmp_path / "Downloads" / "diffusers_xl_canny_full.safetensors", width=2048)
    *imports, listed, text = run_studio_commands(  # one after another, as a person types them, in one fresh Python
        home, *(["models", "import", str(source)] for source in (canny, canny_xl)),
        ["models", "list", "--kind", "controlnet", "--json"], ["models", "list", "--no-hash"])
    for source, imported in zip((canny, canny_xl), imports, strict=True):
        assert imported.returncode == 0, imported.stderr
        assert f"to {home / 'data' / 'models' / 'controlnet' / source.name}." in imported.stdout
    assert listed.returncode == 0, listed.stderr
    items = {item["name"]: item for item in json.loads(listed.stdout)}
    assert {name: (item["kind"], item["family"], item["label"]) for name, item in items.items()} == {
        "control_v11p_sd15_canny": ("controlnet", "sd1", "ControlNet (SD 1.x)"),
        "diffusers_xl_canny_full": ("controlnet", "sdxl", "ControlNet (SDXL)")}
    assert len(items["control_v11p_sd15_canny"]["hash"]) == 10  # AutoV2, as every model's in the library
    assert "control_v11p_sd15_canny  ControlNet (SD 1.x)" in text.stdout
