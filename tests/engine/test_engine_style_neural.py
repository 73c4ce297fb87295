"""Gatys neural style transfer on random VGG-19 weights written to a models folder and read by the real loader."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from style_weights import RecordingContext, gradient_image, make_env, write_vgg19

from studio.core.errors import JobCancelledError, ModelError
from studio.engine.style.neural import NeuralStyle, preview_image, working_size
from studio.engine.style.vgg import CONV5_1, VGGFeatures, vgg19_layers
from studio.engine.style.weights import VGG19_FILE, require_weights, style_weights_dir

CONTENT = gradient_image(48, 36, seed=1)
STYLE = gradient_image(40, 40, seed=7)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    write_vgg19(models)
    return models


@pytest.fixture(scope="module")
def neural(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> NeuralStyle:
    """One instance for the module, as Studio keeps one for the session (weights stay loaded)."""
    return NeuralStyle(make_env(tmp_path_factory.mktemp("env"), models_dir))


def params(**overrides: object) -> dict[str, object]:
    return {"style": STYLE, "iterations": 4, "resolution": 40, "content_weight": 1.0, "style_weight": 1e6,
            "seed": 0, "init": "content", "preserve_colors": False} | overrides


def test_importing_the_style_package_does_not_load_torch():
    code = "import sys, studio.engine.style; assert 'torch' not in sys.modules, 'torch loaded'"
    root = str(Path(__file__).resolve().parents[2])
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ | {"PYTHONPATH": root})


def test_vgg_layers_follow_torchvisions_layout():
    layers = vgg19_layers(36)
    assert len(layers) == 37
    convs = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert [i for i, m in enumerate(layers) if isinstance(m, torch.nn.MaxPool2d)] == [4, 9, 18, 27, 36]
    assert set(VGGFeatures(CONV5_1 + 1).expected_shapes()) == {f"{i}.{p}" for i in convs[:13] for p in ("weight", "bias")}


def test_output_has_the_input_size_and_mode(neural):
    result = neural.process(CONTENT, params(iterations=2), RecordingContext())
    assert result.size == CONTENT.size and result.mode == "RGB"


def test_style_loss_falls_and_every_iteration_lowers_the_total(neural):
    neural.process(CONTENT, params(iterations=10), RecordingContext())
    losses = neural.last_losses
    assert len(losses) == 11  # the start, then each iteration
    style = [s for s, _ in losses]
    assert style[-1] < 0.5 * style[0]
    totals = [s + c for s, c in losses]
    assert all(b <= a for a, b in itertools.pairwise(totals))
    assert sum(b > a for a, b in itertools.pairwise(style)) <= 2  # content may trade a little style away
    assert neural.passes <= 2 * 10  # the line search mostly accepts its first try


def test_same_seed_gives_the_same_picture_and_another_seed_another(neural, models_dir, tmp_path):
    first = neural.process(CONTENT, params(init="noise", seed=3), RecordingContext())
    again = NeuralStyle(make_env(tmp_path, models_dir)).process(CONTENT, params(init="noise", seed=3),
                                                                 RecordingContext())
    other = neural.process(CONTENT, params(init="noise", seed=4), RecordingContext())
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_cancel_stops_the_run_promptly(neural):
    context = RecordingContext(cancel_after=3)
    with pytest.raises(JobCancelledError):
        neural.process(CONTENT, params(iterations=50), context)
    assert context.checks == 4  # raised on the first check after the limit, not at the end
    assert len(context.progress) < 3


def test_progress_counts_iterations_with_small_previews(neural):
    context = RecordingContext()
    neural.process(CONTENT, params(iterations=7), context)
    assert [(step, total) for step, total, _ in context.progress] == [(i, 7) for i in range(1, 8)]
    previews = [p for _, _, p in context.progress if p is not None]
    assert 2 <= len(previews) < 7 and context.progress[-1][2] is not None
    assert all(isinstance(p, Image.Image) and max(p.size) <= 256 for p in previews)


def test_preview_is_shrunk_to_256_pixels():
    preview = preview_image(torch.rand(1, 3, 300, 600))
    assert preview.size == (256, 128) and preview.mode == "RGB"


def test_working_size_scales_the_long_side():
    assert working_size((1000, 500), 512) == (512, 256)
    assert working_size((48, 36), 96) == (96, 72)
    assert working_size((2000, 20), 64) == (64, 16)  # no side under 16: conv5_1 keeps a pixel


def test_preserve_colors_moves_the_colours_back(neural):
    from studio.core.color_transfer import lab_statistics, transfer_color

    red = Image.new("RGB", (40, 40), (220, 30, 30))
    plain = neural.process(CONTENT, params(style=red, style_weight=1e9), RecordingContext())
    kept = neural.process(CONTENT, params(style=red, style_weight=1e9, preserve_colors=True), RecordingContext())
    assert kept.tobytes() == transfer_color(plain, CONTENT, "lab").tobytes()
    content_mean = lab_statistics(CONTENT)[0]
    assert np.abs(lab_statistics(kept)[0] - content_mean).max() < 3  # out-of-gamut clipping moves it a little
    assert np.abs(lab_statistics(kept)[0] - content_mean).max() < np.abs(lab_statistics(plain)[0] - content_mean).max()


def test_weights_stay_loaded_until_the_file_changes(neural, models_dir):
    cpu = torch.device("cpu")
    loaded = neural.load(cpu)
    assert neural.load(cpu) is loaded
    path = models_dir / "style" / VGG19_FILE
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert neural.load(cpu) is not loaded


def test_keys_without_the_features_prefix_load(tmp_path):
    write_vgg19(tmp_path / "models", prefix="")
    NeuralStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(iterations=1), RecordingContext())


def test_missing_weights_say_what_to_get_and_where(tmp_path):
    env = make_env(tmp_path, tmp_path / "my models")
    folder = tmp_path / "my models" / "style"
    with pytest.raises(ModelError) as caught:
        NeuralStyle(env).process(CONTENT, params(), RecordingContext())
    assert str(caught.value) == (
        f"Neural style transfer needs VGG-19 ImageNet weights: put vgg19.safetensors in {folder}{os.sep} "
        f"(convert torchvision's vgg19-dcbb9e9d.pth with: "
        f"studio convert-weights vgg19-dcbb9e9d.pth {folder / 'vgg19.safetensors'}).")


def test_without_a_models_folder_the_data_folder_is_used(tmp_path):
    env = make_env(tmp_path, None)
    assert style_weights_dir(env) == tmp_path / "data" / "models" / "style"
    with pytest.raises(ModelError, match="vgg19.safetensors"):
        require_weights(env, [VGG19_FILE], "Neural style transfer")


def test_wrong_shapes_are_refused_naming_the_file(tmp_path):
    write_vgg19(tmp_path / "models")
    path = tmp_path / "models" / "style" / VGG19_FILE
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    tensors["features.10.weight"] = torch.zeros(8, 128, 3, 3)
    save_file(tensors, str(path))
    with pytest.raises(ModelError) as caught:
        NeuralStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())
    message = str(caught.value)
    assert message.startswith(f"{path} is not a VGG-19 file: ") and "features.10.weight" in message


def test_a_file_that_is_not_safetensors_is_refused_naming_it(tmp_path):
    path = tmp_path / "models" / "style" / VGG19_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff" * 8 + b"not a header")  # claims an enormous header: must not allocate it
    with pytest.raises(ModelError, match=f"^{path} is not a VGG-19 file: "):
        NeuralStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())


def test_a_file_missing_layers_is_refused(tmp_path):
    write_vgg19(tmp_path / "models", last=CONV5_1 - 2)  # stops before conv5_1
    with pytest.raises(ModelError, match="has no tensor named 'features.28.weight'"):
        NeuralStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())
