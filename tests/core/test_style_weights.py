"""The style-transfer weight files are tied to Studio's own post-processors by id, not by the title people read."""

from __future__ import annotations

from studio.core.style_weights import ADAIN_DECODER_FILE, ADAIN_VGG_FILE, VGG19_FILE, WEIGHTS, weights_used_by
from studio.plugin_host.registry import POSTPROCESSOR, builtin_registry


def test_each_weights_file_names_a_builtin_post_processor_by_its_id():
    registry = builtin_registry()
    for weights in WEIGHTS:
        contribution = registry.get(POSTPROCESSOR, weights.processor)
        assert contribution.builtin, weights


def test_the_weights_a_post_processor_loads_are_found_by_its_id():
    assert [w.name for w in weights_used_by("neural")] == [VGG19_FILE]
    assert [w.name for w in weights_used_by("adain")] == [ADAIN_VGG_FILE, ADAIN_DECODER_FILE]
    for other in ("color", "upscale", "Neural Style Transfer", ""):  # a title is not an id
        assert weights_used_by(other) == ()
