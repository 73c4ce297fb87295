"""AdaIN style transfer on random weights in pytorch-AdaIN's layout, written to a models folder and loaded back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from style_weights import RecordingContext, gradient_image, make_env, write_adain

from studio.core.errors import ModelError
from studio.core.held_memory import CACHED
from studio.engine.held_memory import release_memory
from studio.engine.style.adain import (
    AdaINStyle,
    adain_decoder,
    adain_encoder,
    adaptive_instance_normalization,
    multiple_of_8_size,
)
from studio.engine.style.neural import to_image, to_tensor
from studio.engine.style.weights import ADAIN_DECODER_FILE, ADAIN_VGG_FILE

CONTENT = gradient_image(50, 38, seed=1)  # sides not multiples of 8
STYLE = gradient_image(40, 56, seed=7)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    write_adain(models)
    return models


@pytest.fixture(scope="module")
def adain(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AdaINStyle:
    return AdaINStyle(make_env(tmp_path_factory.mktemp("env"), models_dir))


def params(**overrides: object) -> dict[str, object]:
    return {"style": STYLE, "alpha": 1.0, "resolution": 64, "preserve_colors": False} | overrides


def test_modules_match_pytorch_adain_net_py():
    encoder, decoder = adain_encoder(), adain_decoder()
    assert len(encoder) == 31 and len(decoder) == 29
    assert isinstance(encoder[0], torch.nn.Conv2d) and encoder[0].kernel_size == (1, 1)
    encoder_convs = [i for i, m in enumerate(encoder) if isinstance(m, torch.nn.Conv2d)]
    assert encoder_convs == [0, 2, 5, 9, 12, 16, 19, 22, 25, 29]
    decoder_convs = [i for i, m in enumerate(decoder) if isinstance(m, torch.nn.Conv2d)]
    assert decoder_convs == [1, 5, 8, 11, 14, 18, 21, 25, 28]
    assert [i for i, m in enumerate(decoder) if isinstance(m, torch.nn.Upsample)] == [3, 16, 23]
    features = encoder(torch.rand(1, 3, 32, 48))
    assert features.shape == (1, 512, 4, 6)
    assert decoder(features).shape == (1, 3, 32, 48)


def test_adain_gives_the_content_the_styles_channel_statistics():
    content, style = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 6, 6) * 3 + 2
    mixed = adaptive_instance_normalization(content, style)
    assert torch.allclose(mixed.mean((2, 3)), style.mean((2, 3)), atol=1e-4)
    assert torch.allclose(mixed.std((2, 3)), style.std((2, 3)), atol=1e-2)


def test_output_has_the_input_size_and_mode(adain):
    context = RecordingContext()
    result = adain.process(CONTENT, params(), context)
    assert result.size == CONTENT.size and result.mode == "RGB"
    assert context.progress[-1][:2] == (2, 2)
    assert isinstance(context.progress[-1][2], Image.Image) and max(context.progress[-1][2].size) <= 256


def test_alpha_zero_decodes_the_contents_own_features(adain):
    size = multiple_of_8_size(CONTENT.size, 64)
    encoder, decoder = adain.load(torch.device("cpu"))
    with torch.no_grad():
        plain = to_image(decoder(encoder(to_tensor(CONTENT, size, torch.device("cpu")))).clamp(0, 1))
    expected = plain.resize(CONTENT.size, Image.Resampling.LANCZOS)
    kept = adain.process(CONTENT, params(alpha=0.0), RecordingContext())
    other_style = adain.process(CONTENT, params(alpha=0.0, style=Image.new("RGB", (30, 30), "red")),
                                RecordingContext())
    styled = adain.process(CONTENT, params(alpha=1.0), RecordingContext())
    difference = torch.tensor(list(kept.tobytes()), dtype=torch.int16) - torch.tensor(list(expected.tobytes()))
    assert difference.abs().max() <= 1  # same computation; only float rounding may differ
    assert kept.tobytes() == other_style.tobytes()  # alpha 0 ignores the style entirely
    assert kept.tobytes() != styled.tobytes()


def test_the_same_inputs_give_the_same_picture(adain, models_dir, tmp_path):
    first = adain.process(CONTENT, params(alpha=0.6), RecordingContext())
    again = AdaINStyle(make_env(tmp_path, models_dir)).process(CONTENT, params(alpha=0.6), RecordingContext())
    assert first.tobytes() == again.tobytes()


def test_the_loaded_networks_are_listed_in_memory_and_freed(models_dir, tmp_path):
    style = AdaINStyle(make_env(tmp_path, models_dir))
    assert style.held_models() == []
    style.process(CONTENT, params(), RecordingContext())
    ((held,),) = [style.held_models()]
    assert (held.name, held.role, held.device) == ("Fast style transfer (AdaIN): encoder and decoder", CACHED, "cpu")
    assert held.size == sum(p.numel() * p.element_size() for m in style._modules for p in m.parameters())
    assert release_memory([style]).models == (held,) and style.held_models() == []


def test_preserve_colors_is_the_lab_transfer_of_the_result(adain):
    from studio.core.color_transfer import transfer_color

    plain = adain.process(CONTENT, params(), RecordingContext())
    kept = adain.process(CONTENT, params(preserve_colors=True), RecordingContext())
    assert kept.tobytes() == transfer_color(plain, CONTENT, "lab").tobytes()


def test_sizes_are_multiples_of_8():
    assert multiple_of_8_size((50, 38), 64) == (64, 48)
    assert multiple_of_8_size((1000, 333), 768) == (768, 256)
    assert multiple_of_8_size((3000, 20), 64) == (64, 16)


def test_missing_decoder_says_what_to_get_and_where(tmp_path):
    write_adain(tmp_path / "models")
    folder = tmp_path / "models" / "style"
    (folder / ADAIN_DECODER_FILE).unlink()
    with pytest.raises(ModelError) as caught:
        AdaINStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())
    assert str(caught.value) == (
        f"Fast style transfer (AdaIN) needs the AdaIN decoder weights: put adain-decoder.safetensors in "
        f"{folder}{os.sep} (convert the pytorch-AdaIN release's decoder.pth with: "
        f"studio convert-weights decoder.pth {folder / 'adain-decoder.safetensors'}).")


def test_missing_both_files_names_both(tmp_path):
    with pytest.raises(ModelError) as caught:
        AdaINStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())
    message = str(caught.value)
    assert "needs the AdaIN encoder and decoder weights" in message
    assert "adain-vgg.safetensors and adain-decoder.safetensors" in message
    assert "studio convert-weights vgg_normalised.pth" in message and "studio convert-weights decoder.pth" in message


def test_the_released_encoder_with_all_53_modules_loads(tmp_path):
    """vgg_normalised.pth holds the VGG up to relu5_4; the layers past relu4_1 are ignored."""
    vgg_path, _ = write_adain(tmp_path / "models")
    tensors = load_file(str(vgg_path))
    tensors |= {f"{i}.weight": torch.zeros(512, 512, 3, 3) for i in (32, 35, 38, 42, 45, 48, 51)}
    save_file(tensors, str(vgg_path))
    result = AdaINStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())
    assert result.size == CONTENT.size


def test_a_decoder_with_wrong_shapes_is_refused_naming_it(tmp_path):
    _, decoder_path = write_adain(tmp_path / "models")
    tensors = load_file(str(decoder_path))
    tensors["1.weight"] = torch.zeros(256, 256, 3, 3)
    save_file(tensors, str(decoder_path))
    with pytest.raises(ModelError) as caught:
        AdaINStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())
    assert str(caught.value).startswith(f"{decoder_path} is not an AdaIN decoder file: ")
    assert "1.weight" in str(caught.value)


def test_an_encoder_file_given_as_the_decoder_is_refused(tmp_path):
    vgg_path, decoder_path = write_adain(tmp_path / "models")
    decoder_path.write_bytes(vgg_path.read_bytes())
    with pytest.raises(ModelError, match=f"^{decoder_path} is not an AdaIN decoder file: "):
        AdaINStyle(make_env(tmp_path, tmp_path / "models")).process(CONTENT, params(), RecordingContext())


def test_weights_stay_loaded_between_calls(adain):
    cpu = torch.device("cpu")
    assert adain.load(cpu) is adain.load(cpu)
    assert (adain.env.models_dir / "style" / ADAIN_VGG_FILE).is_file()


def test_on_a_cpu_with_bfloat16_units_it_runs_bfloat16_channels_last_near_the_float32_picture(adain, monkeypatch):
    from studio.engine import cpu_precision

    image = gradient_image(96, 80, seed=3)
    float32 = np.asarray(adain.process(image, params(resolution=96), RecordingContext()), np.int16)
    encoder, decoder = adain.load(torch.device("cpu"))
    seen: list[torch.dtype] = []
    hook = encoder[2].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))  # the first 3x3 conv
    monkeypatch.delenv(cpu_precision.ENV)
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    bfloat16 = np.asarray(adain.process(image, params(resolution=96), RecordingContext()), np.int16)
    hook.remove()
    assert seen == [torch.bfloat16, torch.bfloat16]  # the content's and the style's pass
    assert encoder[2].weight.is_contiguous(memory_format=torch.channels_last)
    assert decoder[1].weight.is_contiguous(memory_format=torch.channels_last)
    difference = np.abs(bfloat16 - float32)
    assert difference.any() and difference.mean() <= 1.0 and difference.max() <= 8, (difference.mean(), difference.max())


def test_preserve_colors_counts_only_the_pixels_that_show(adain):
    """A picture half orange, half transparent (hidden black): given as RGB, the hidden half went into the colour
    statistics and the visible half came out far darker than the picture."""
    from studio.core.color_transfer import lab_statistics

    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[:, :32] = (230, 140, 60, 255)
    rgba[:, :32, :3] = np.clip(rgba[:, :32, :3] + np.random.default_rng(0).normal(0, 10, (48, 32, 3)), 0, 255)
    picture = Image.fromarray(rgba, "RGBA")
    kept = adain.process(picture, params(preserve_colors=True), RecordingContext())
    shown = Image.fromarray(np.asarray(kept.convert("RGB"))[:, :32])
    assert np.abs(lab_statistics(shown)[0] - lab_statistics(picture)[0]).max() < 1.0
    clear = Image.fromarray(np.zeros((48, 64, 4), np.uint8), "RGBA")  # nothing shows: nothing to keep, no refusal
    assert adain.process(clear, params(preserve_colors=True), RecordingContext()).size == (64, 48)
