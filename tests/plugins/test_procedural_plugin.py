"""plugins/studio-procedural: the procedural generator, driven the way Studio drives it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from first_party import FakeContext, checked, manifest_of
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.parameters import validate_params
from studio.plugin_api import (
    GenerationRequest,
    Generator,
    GeneratorEnvironment,
    JobCancelledError,
)

PATTERNS = ["clouds", "marble", "waves", "rings", "cells", "gradient"]
SPEC = manifest_of("studio-procedural").of_kind("generator")[0]


def make(procedural, context, prompt="teal gold", seed=7, width=96, height=64, batch_count=1, negative="",
         **params) -> list[Image.Image]:
    request = GenerationRequest(model="", prompt=prompt, negative_prompt=negative, width=width, height=height,
                                seed=seed, batch_count=batch_count, generator=SPEC.id,
                                params=checked(SPEC, **params))
    generator = procedural.ProceduralGenerator(GeneratorEnvironment("cpu", context.data_dir, context.data_dir))
    return list(generator.generate(request, context))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_manifest_declares_the_generator_and_its_parameters():
    manifest = manifest_of("studio-procedural")
    assert (manifest.id, manifest.version, manifest.compatible) == ("studio-procedural", "1.0.0", True)
    assert not manifest.permissions.network and not manifest.permissions.files
    assert SPEC.target == "studio_procedural.generator:ProceduralGenerator"
    assert [p.name for p in SPEC.parameters] == ["pattern", "scale", "detail", "warp", "contrast"]
    assert list(SPEC.parameters[0].choices) == PATTERNS


def test_parameters_are_checked_through_the_manifest():
    defaults = validate_params(SPEC.parameters, {}, "procedural")
    assert defaults == {"pattern": "clouds", "scale": 4.0, "detail": 5, "warp": 0.3, "contrast": 1.0}
    assert validate_params(SPEC.parameters, {"scale": "8", "detail": "2"}, "procedural")["detail"] == 2
    for bad in ({"scale": 0.1}, {"scale": 100}, {"detail": 0}, {"detail": 9}, {"detail": 2.5}, {"warp": -1},
                {"contrast": 5}, {"pattern": "plaid"}, {"octaves": 3}):
        with pytest.raises(InvalidRequest):
            validate_params(SPEC.parameters, bad, "procedural")


def test_it_is_a_generator(procedural, tmp_path):
    env = GeneratorEnvironment("cpu", tmp_path, tmp_path)
    assert isinstance(procedural.ProceduralGenerator(env), Generator)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_makes_a_varied_picture_of_the_asked_size(procedural, context, pattern):
    (image,) = make(procedural, context, pattern=pattern, width=120, height=80)
    assert image.mode == "RGB" and image.size == (120, 80)
    values = pixels(image)
    assert values.std() > 10, "a flat picture"
    assert len(np.unique(values.reshape(-1, 3), axis=0)) > 50


@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_inputs_same_picture_and_seeds_differ(procedural, context, pattern):
    first = make(procedural, context, pattern=pattern, seed=11)[0]
    again = make(procedural, context, pattern=pattern, seed=11)[0]
    other = make(procedural, context, pattern=pattern, seed=12)[0]
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 5


def test_batches_use_consecutive_seeds(procedural, context):
    batch = make(procedural, context, seed=40, batch_count=3, pattern="cells")
    assert len(batch) == 3
    for index, image in enumerate(batch):
        alone = make(procedural, FakeContext(context.data_dir), seed=40 + index, pattern="cells")[0]
        assert np.array_equal(pixels(image), pixels(alone))
    assert not np.array_equal(pixels(batch[0]), pixels(batch[1]))
    assert sorted({index for _, _, index, _ in context.progress}) == [0, 1, 2]


def test_the_last_seed_wraps_around(procedural, context):
    batch = make(procedural, context, seed=2**32 - 1, batch_count=2)
    assert np.array_equal(pixels(batch[1]), pixels(make(procedural, context, seed=0)[0]))


def test_prompt_words_choose_the_palette(procedural, context, palette):
    red = pixels(make(procedural, context, prompt="red", seed=3)[0]).reshape(-1, 3).mean(axis=0)
    ocean = pixels(make(procedural, context, prompt="ocean", seed=3)[0]).reshape(-1, 3).mean(axis=0)
    assert red[0] > red[2] + 20, "red should be red"
    assert ocean[2] > ocean[0] + 20, "the ocean should be blue"
    assert np.array_equal(palette.palette_for("A RED, red... castle!"), palette.palette_for("red castle"))


def test_other_words_give_different_but_stable_palettes(palette):
    dragon, castle = palette.palette_for("a dragon"), palette.palette_for("a castle")
    assert not np.array_equal(dragon, castle)
    assert np.array_equal(dragon, palette.palette_for("the dragon"))  # filler words do not count
    assert np.array_equal(dragon, palette.palette_for("a dragon"))
    # Stable across processes too: BLAKE2 of the word, not Python's per-run hash().
    assert palette.palette_for("dragon").tolist()[1] == list(_blake_colour("dragon"))


def _blake_colour(word: str) -> tuple[int, int, int]:
    import colorsys
    import hashlib

    digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
    rgb = colorsys.hsv_to_rgb(int.from_bytes(digest[:2], "big") / 65536, 0.45 + 0.4 * digest[2] / 255,
                              0.55 + 0.4 * digest[3] / 255)
    return tuple(round(255 * c) for c in rgb)


def test_palette_rules(palette):
    empty = palette.palette_for("")
    assert len(empty) >= 3 and np.array_equal(empty, palette.palette_for("a picture of"))
    assert len(palette.palette_for("teal")) == 3  # one colour: shade, colour, tint
    assert len(palette.palette_for("sunset")) == 5
    mixed = palette.palette_for("neon ocean")
    lightness = mixed.astype(float) @ [0.2126, 0.7152, 0.0722]
    assert list(lightness) == sorted(lightness), "several words blend dark to light"
    assert np.array_equal(palette.palette_for("red teal", "red"), palette.palette_for("teal"))  # negative removes
    assert len(palette.palette_for(" ".join(palette.THEMES))) == palette.MAX_STOPS


def test_progress_counts_stages_with_small_previews(procedural, context):
    make(procedural, context, detail=3, width=512, height=256)
    steps = [(step, total) for step, total, _, _ in context.progress]
    assert steps == [(i, 6) for i in range(1, 7)]  # 3 octaves, the pattern, the warp, the colours
    previews = [preview for *_, preview in context.progress if preview is not None]
    assert len(previews) == 5
    assert all(p.mode == "RGB" and max(p.size) <= 128 for p in previews)
    assert previews[0].size == (128, 64)
    assert context.cancel_checks >= 6


def test_cancel_stops_between_stages(procedural, tmp_path):
    context = FakeContext(tmp_path, cancel_after=2)
    with pytest.raises(JobCancelledError):
        make(procedural, context, batch_count=3, detail=8)
    assert len(context.progress) == 2
    assert {index for _, _, index, _ in context.progress} == {0}


def test_cancel_between_pictures_of_a_batch(procedural, tmp_path):
    context = FakeContext(tmp_path, cancel_after=8)  # detail 5: 8 progress calls per picture
    request = GenerationRequest(model="", prompt="", width=64, height=64, seed=1, batch_count=3,
                                params=checked(SPEC))
    generator = procedural.ProceduralGenerator(GeneratorEnvironment("cpu", tmp_path, tmp_path)).generate(
        request, context)
    first = next(generator)
    assert first.size == (64, 64)
    with pytest.raises(JobCancelledError):
        next(generator)
    assert len(context.progress) == 8


def test_parameters_change_the_picture(procedural, context):
    base = pixels(make(procedural, context, seed=5)[0])
    for change in ({"scale": 12.0}, {"detail": 1}, {"warp": 0.0}, {"contrast": 3.0}, {"pattern": "rings"}):
        assert not np.array_equal(base, pixels(make(procedural, context, seed=5, **change)[0])), change


def test_contrast_spreads_the_colours(procedural, context):
    flat = pixels(make(procedural, context, prompt="monochrome", contrast=0.25)[0])
    strong = pixels(make(procedural, context, prompt="monochrome", contrast=4.0)[0])
    assert strong.std() > flat.std() * 1.5


def test_a_bigger_picture_of_the_same_seed_looks_the_same(procedural, context):
    small = make(procedural, context, seed=9, width=64, height=64, pattern="cells", warp=0.0)[0]
    large = make(procedural, context, seed=9, width=256, height=256, pattern="cells", warp=0.0)[0]
    shrunk = large.resize((64, 64), Image.Resampling.BOX)
    assert np.abs(pixels(shrunk) - pixels(small)).mean() < 20
    other = make(procedural, context, seed=10, width=64, height=64, pattern="cells", warp=0.0)[0]
    assert np.abs(pixels(other) - pixels(small)).mean() > np.abs(pixels(shrunk) - pixels(small)).mean()


@pytest.mark.parametrize("size", [(64, 4096), (4096, 64), (72, 64)])
def test_odd_shapes(procedural, context, size):
    (image,) = make(procedural, context, width=size[0], height=size[1], pattern="marble", warp=1.0)
    assert image.size == size


@pytest.mark.parametrize("pattern", PATTERNS)
def test_fields_stay_finite_at_the_limits(fields, pattern):
    for scale, detail, warp in ((0.5, 1, 2.0), (32.0, 8, 2.0)):
        *_, field = fields.field_stages(pattern, 80, 48, 2**32 - 1, scale=scale, detail=detail, warp=warp)
        assert field.shape == (48, 80) and field.dtype == np.float32 and np.isfinite(field).all()
        normal = fields.normalise(field, 4.0)
        assert normal.min() >= 0 and normal.max() <= 1


def test_512_is_fast(procedural, context):
    make(procedural, context, width=64, height=64)  # warm up numpy
    for pattern in PATTERNS:
        started = time.perf_counter()
        make(procedural, context, pattern=pattern, width=512, height=512, detail=8, warp=1.0)
        assert time.perf_counter() - started < 1.0, pattern
