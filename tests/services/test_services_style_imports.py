"""Style-transfer weights imported through the Model Library land under the names the style filters look for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from style_weights import make_env, write_adain, write_vgg19

from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_kinds import detect_kind
from studio.core.model_library import scan_library
from studio.core.style_weights import ADAIN_DECODER_FILE, ADAIN_VGG_FILE, VGG19_FILE, WEIGHTS, weights_file_for
from studio.core.weight_files import check_weights_file
from studio.engine.style.adain import AdaINStyle
from studio.engine.style.weights import require_weights
from studio.services.model_conversion import convert_and_import
from studio.services.model_imports import import_model


def _downloaded(path: Path, new_name: str) -> Path:
    """A style file as people have it: under its download's name, outside the models folder."""
    return path.rename(path.with_name(new_name))


def _adain_sources(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    encoder, decoder = write_adain(folder, seed)
    return _downloaded(encoder, "vgg_normalised.safetensors"), _downloaded(decoder, "decoder.safetensors")


def test_every_style_file_maps_from_what_detection_calls_it(tmp_path):
    """The import relies on detect_kind's details matching core's table: a renamed detail must fail here."""
    vgg = write_vgg19(tmp_path / "a", last=3)
    encoder, decoder = write_adain(tmp_path / "b")
    found = [weights_file_for(detect_kind(check_weights_file(p)).detail) for p in (vgg, encoder, decoder)]
    assert [w.name if w else None for w in found] == [VGG19_FILE, ADAIN_VGG_FILE, ADAIN_DECODER_FILE]
    assert {w.name for w in WEIGHTS} == {VGG19_FILE, ADAIN_VGG_FILE, ADAIN_DECODER_FILE}
    assert weights_file_for("") is None and weights_file_for("ESRGAN") is None


def test_style_weights_imported_under_their_download_names_are_found_by_the_filters(tmp_path):
    models = tmp_path / "models"
    env = make_env(tmp_path, models_dir=models)
    vgg = _downloaded(write_vgg19(tmp_path / "dl"), "vgg19-dcbb9e9d.safetensors")
    encoder, decoder = _adain_sources(tmp_path / "dl-adain")
    with pytest.raises(ModelError, match="needs VGG-19 ImageNet weights"):
        require_weights(env, [VGG19_FILE], "Neural style transfer")

    seen: list[tuple[int, int]] = []
    results = [import_model(p, models, progress=lambda done, total: seen.append((done, total)))
               for p in (vgg, encoder, decoder)]
    style = models / "style"
    assert [r.item.path for r in results] == [style / VGG19_FILE, style / ADAIN_VGG_FILE, style / ADAIN_DECODER_FILE]
    assert all(r.copied and r.item.kind == "style" for r in results)
    assert results[0].note == ("Imported vgg19-dcbb9e9d.safetensors as vgg19.safetensors, the name Neural Style "
                               "Transfer looks for.")
    assert seen[-1] == (decoder.stat().st_size,) * 2
    for source, result in zip((vgg, encoder, decoder), results, strict=True):
        assert source.exists() and result.item.path.read_bytes() == source.read_bytes()  # a copy, byte for byte
    assert sorted(p.name for p in style.iterdir()) == sorted([VGG19_FILE, ADAIN_VGG_FILE, ADAIN_DECODER_FILE])
    sources = {i.path.name: i.source for i in scan_library(models)}
    assert sources[VGG19_FILE] == f"imported from {vgg.resolve()}"

    # The filters' own lookups find them, and AdaIN loads its encoder and decoder from them.
    assert require_weights(env, [VGG19_FILE], "Neural style transfer") == [style / VGG19_FILE]
    encoder_net, decoder_net = AdaINStyle(env).load(torch.device("cpu"))
    assert encoder_net is not None and decoder_net is not None


def test_the_same_style_file_again_is_not_copied_and_a_different_one_does_not_replace_it(tmp_path):
    models = tmp_path / "models"
    encoder, _ = _adain_sources(tmp_path / "first")
    stray = models / "style" / "vgg_normalised.safetensors"  # the same file under its own name, as imports once did
    stray.parent.mkdir(parents=True)
    stray.write_bytes(encoder.read_bytes())
    installed = import_model(encoder, models)
    assert installed.copied and installed.item.path == models / "style" / ADAIN_VGG_FILE  # the stray is not used

    again = import_model(encoder, models)
    assert not again.copied and again.note == (f"vgg_normalised.safetensors is already in the library as "
                                               f"{models / 'style' / ADAIN_VGG_FILE}.")
    other, _ = _adain_sources(tmp_path / "second", seed=1)
    before = installed.item.path.read_bytes()
    with pytest.raises(InvalidRequest) as taken:
        import_model(other, models)
    assert str(taken.value) == (f"The library already has different Fast Style Transfer (AdaIN) weights, "
                                f"{models / 'style' / ADAIN_VGG_FILE}; remove that one first to use "
                                "vgg_normalised.safetensors instead.")
    assert installed.item.path.read_bytes() == before


def test_style_weights_that_do_not_fit_the_filter_are_refused_and_leave_nothing(tmp_path):
    models = tmp_path / "models"
    partial = write_vgg19(tmp_path / "dl", last=3)  # VGG-19 by its first layers, but not the layers the filter runs
    assert detect_kind(check_weights_file(partial)).detail == "VGG-19"
    with pytest.raises(ModelError, match=r"is not a VGG-19 file: it has no tensor named 'features\.\d+\.weight'") as err:
        import_model(partial, models)
    assert str(err.value).startswith(f"{partial} is not")  # the person's file, not a temporary copy
    assert not [p for p in (models / "style").iterdir()]  # no half-written or wrong file for the filter to find


def test_a_converted_pickle_is_installed_under_the_filter_s_name(tmp_path):
    from studio.engine.style.adain import adain_decoder

    models = tmp_path / "models"
    checkpoint = tmp_path / "decoder.pth"  # as the pytorch-AdaIN release ships it
    torch.save(adain_decoder().state_dict(), checkpoint)
    result = convert_and_import(checkpoint, models)
    assert result.copied and result.item.path == models / "style" / ADAIN_DECODER_FILE
    assert scan_library(models)[0].source == f"imported from {checkpoint.resolve()}"
    assert not (models / ".incoming").exists()
    assert require_weights(make_env(tmp_path, models_dir=models), [ADAIN_DECODER_FILE], "AdaIN") == [
        models / "style" / ADAIN_DECODER_FILE]
