"""``studio models import`` of style-transfer weights under their download names, then the filter runs with them."""

from __future__ import annotations

import pytest
from PIL import Image
from studio_testing import run_studio_commands
from style_weights import gradient_image, write_adain

from studio.core.style_weights import ADAIN_DECODER_FILE, ADAIN_VGG_FILE


@pytest.mark.slow  # a Studio process importing torch
def test_adain_weights_imported_by_the_command_line_are_what_the_filter_uses(tmp_path):
    """The imports and the filter one after another, as a person types them, in one fresh Python."""
    home = tmp_path / "studio-home"
    encoder, decoder = write_adain(tmp_path / "Downloads")
    sources = [encoder.rename(encoder.with_name("vgg_normalised.safetensors")),
               decoder.rename(decoder.with_name("decoder.safetensors"))]
    picture, style, out = tmp_path / "in.png", tmp_path / "style.png", tmp_path / "out.png"
    gradient_image(48, 32).save(picture)
    gradient_image(32, 32, seed=1).save(style)
    # Worked at 64 pixels (the default, 768, takes seconds on a CPU), then resized back to the picture's size.
    postprocess = ("postprocess", str(picture), "-o", str(out), "--method", "adain", "--style", str(style),
                   "--resolution", "64")

    folder = home / "data" / "models" / "style"
    *imports, done = run_studio_commands(home, *(["models", "import", str(source)] for source in sources),
                                         list(postprocess))
    for source, name, imported in zip(sources, (ADAIN_VGG_FILE, ADAIN_DECODER_FILE), imports, strict=True):
        assert imported.returncode == 0, imported.stderr
        assert f"(Style-transfer weights) to {folder / name}." in imported.stdout
        assert (folder / name).read_bytes() == source.read_bytes()
    assert done.returncode == 0, done.stderr  # the filter finds them only under its own names
    with Image.open(out) as result:
        assert result.size == (48, 32)
