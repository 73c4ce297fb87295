"""plugins/studio-film: the "Film look" post-processor, driven the way Studio drives it."""

from __future__ import annotations

import numpy as np
import pytest
from first_party import FakeContext, checked, manifest_of
from PIL import Image, ImageFilter

from studio.core.errors import InvalidRequest
from studio.core.parameters import validate_params
from studio.plugin_api import GeneratorEnvironment, JobCancelledError, PostProcessor

SPEC = manifest_of("studio-film").of_kind("postprocessor")[0]
NOTHING = {"grain": 0.0, "vignette": 0.0, "sharpen": 0.0, "warmth": 0.0}


def photo(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A picture with smooth areas, edges and every brightness."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    base = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                           np.full((height, width, 1), 128.0)], axis=2)
    base[height // 3: height // 2, width // 4: width // 2] = 250  # an edge to sharpen
    base += rng.normal(0, 2, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def run(film, image, context, **params) -> Image.Image:
    processor = film.FilmLook(GeneratorEnvironment("cpu", context.data_dir, context.data_dir))
    return processor.process(image, checked(SPEC, **params), context)


def values(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def test_manifest_declares_the_processor_and_its_parameters():
    manifest = manifest_of("studio-film")
    assert (manifest.id, manifest.version, manifest.compatible) == ("studio-film", "1.0.0", True)
    assert not manifest.permissions.network and not manifest.permissions.files
    assert SPEC.id == "film-look" and SPEC.target == "studio_film.film:FilmLook"
    kinds = {p.name: p.kind for p in SPEC.parameters}
    assert kinds == {"grain": "float", "grain_size": "float", "vignette": "float", "sharpen": "float",
                     "warmth": "float", "seed": "seed"}


def test_parameters_are_checked_through_the_manifest():
    defaults = validate_params(SPEC.parameters, {}, SPEC.title)
    assert defaults == {"grain": 0.25, "grain_size": 1.5, "vignette": 0.3, "sharpen": 0.0, "warmth": 0.0, "seed": 0}
    assert validate_params(SPEC.parameters, {"warmth": "-0.5", "seed": "-1"}, SPEC.title)["warmth"] == -0.5
    for bad in ({"grain": 1.5}, {"grain": -0.1}, {"grain_size": 0.5}, {"vignette": 2}, {"sharpen": 3},
                {"warmth": -2}, {"seed": -2}, {"seed": 2**32}, {"grain": "lots"}, {"blur": 1}):
        with pytest.raises(InvalidRequest):
            validate_params(SPEC.parameters, bad, SPEC.title)


def test_it_is_a_post_processor(film, tmp_path):
    assert isinstance(film.FilmLook(GeneratorEnvironment("cpu", tmp_path, tmp_path)), PostProcessor)


def test_all_amounts_zero_give_back_the_same_pixels(film, context):
    image = photo()
    before = image.tobytes()
    out = run(film, image, context, **NOTHING, seed=-1)
    assert out is not image and out.mode == "RGB" and out.size == image.size
    assert out.tobytes() == before == image.tobytes()  # and the input is left alone
    assert context.notes == []  # no grain, so no seed to tell


def test_alpha_is_kept(film, context):
    image = photo()
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    assert run(film, image, context, **NOTHING).tobytes() == image.tobytes()
    out = run(film, image, context)
    assert out.mode == "RGBA" and out.getchannel("A").tobytes() == image.getchannel("A").tobytes()


def test_other_modes_come_back_as_rgb(film, context):
    grey = photo().convert("L")
    out = run(film, grey, context)
    assert out.mode == "RGB" and out.size == grey.size


def test_defaults_change_the_picture_and_report_progress(film, context):
    image = photo()
    out = run(film, image, context)
    assert out.mode == "RGB" and out.size == image.size
    assert np.abs(values(out) - values(image)).mean() > 1
    assert [(step, total) for step, total, _, _ in context.progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert context.cancel_checks == 4


def test_grain_is_reproducible_by_seed(film, context):
    image = photo()
    first = run(film, image, context, **{**NOTHING, "grain": 0.5}, seed=3)
    again = run(film, image, context, **{**NOTHING, "grain": 0.5}, seed=3)
    other = run(film, image, context, **{**NOTHING, "grain": 0.5}, seed=4)
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    noise = values(first) - values(image)
    assert 3 < noise.std() < 40
    assert abs(noise.mean()) < 2, "grain should not brighten or darken"
    # Monochrome grain, as on film: the same push in every channel (up to rounding and clipping).
    assert np.abs(noise[..., 0] - noise[..., 2]).mean() < 1


def test_seed_minus_one_picks_a_seed_and_says_which(film, context):
    image = photo()
    out = run(film, image, context, **{**NOTHING, "grain": 0.5}, seed=-1)
    (note,) = context.notes
    seed = int(note.rstrip(".").rsplit(" ", 1)[1])
    assert run(film, image, context, **{**NOTHING, "grain": 0.5}, seed=seed).tobytes() == out.tobytes()


def test_bigger_grain_is_coarser(film, context):
    flat = Image.new("RGB", (128, 128), (128, 128, 128))
    fine = values(run(film, flat, context, **{**NOTHING, "grain": 0.5, "grain_size": 1.0}))[..., 0] - 128
    coarse = values(run(film, flat, context, **{**NOTHING, "grain": 0.5, "grain_size": 4.0}))[..., 0] - 128

    def neighbour_correlation(noise: np.ndarray) -> float:
        return float(np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1])

    assert neighbour_correlation(fine) < 0.2
    assert neighbour_correlation(coarse) > 0.6
    assert abs(fine.std() - coarse.std()) < fine.std() * 0.35  # about as strong


def test_vignette_darkens_corners_more_than_the_middle(film, context):
    flat = Image.new("RGB", (120, 80), (200, 180, 160))
    out = values(run(film, flat, context, **{**NOTHING, "vignette": 0.8}))
    middle = out[35:45, 55:65].mean()
    corners = np.mean([out[:5, :5].mean(), out[:5, -5:].mean(), out[-5:, :5].mean(), out[-5:, -5:].mean()])
    edge = out[40, :5].mean()
    assert middle == pytest.approx(180, abs=1)  # the middle is left alone
    assert corners < edge < middle
    assert corners < 180 * 0.4
    assert np.allclose(out, out[::-1, ::-1], atol=1)  # symmetric


def test_warmth_moves_the_balance(film, context):
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    warm = values(run(film, grey, context, **{**NOTHING, "warmth": 1.0}))[0, 0]
    cool = values(run(film, grey, context, **{**NOTHING, "warmth": -1.0}))[0, 0]
    assert warm[0] > 128 > warm[2]
    assert cool[2] > 128 > cool[0]


def test_sharpen_raises_edge_contrast(film, context):
    soft = photo().filter(ImageFilter.GaussianBlur(1.5))
    sharp = run(film, soft, context, **{**NOTHING, "sharpen": 1.5})

    def detail(image: Image.Image) -> float:  # what a blur takes away
        return float(np.abs(values(image) - values(image.filter(ImageFilter.GaussianBlur(2)))).mean())

    assert detail(sharp) > detail(soft) * 1.5


def test_cancel_stops_between_steps(film, tmp_path):
    context = FakeContext(tmp_path, cancel_after=2)
    with pytest.raises(JobCancelledError):
        run(film, photo(), context, sharpen=1.0, warmth=0.5)
    assert len(context.progress) == 2


def test_large_pictures(film, context):
    image = Image.new("RGB", (1536, 1024), (90, 120, 150))
    out = run(film, image, context, sharpen=0.5, warmth=0.3)
    assert out.size == image.size and out.mode == "RGB"
