"""Style Weights dialog: the files the style filters need, importing a safetensors file (checked, copied)
and a .pth (converted only when the person agrees), and refusals as sentences."""

from __future__ import annotations

import pickle

import torch
from safetensors.torch import load_file
from style_weights import write_adain, write_vgg19

from studio.core.style_weights import style_weights_dir
from studio.ui.style_weights_dialog import StyleWeightsDialog


class Sentinel:
    def __init__(self, path) -> None:  # noqa: ANN001
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.path), "w"))


def _run(qtbot, window, coro):  # noqa: ANN001, ANN202
    task = window.actions_.run(coro)
    qtbot.waitUntil(task.done, timeout=60_000)
    return task.result()


def test_importing_style_weights_from_files(qtbot, window, tmp_path, artifacts_dir):
    downloads = tmp_path / "downloads"
    vgg = write_vgg19(downloads)  # downloads/style/vgg19.safetensors: a file the person has
    encoder, decoder = write_adain(downloads)
    dialog = StyleWeightsDialog(window.service.env, window)
    qtbot.addWidget(dialog)
    folder = style_weights_dir(window.service.env)
    assert all(dialog.table.item(r, 3).text() == "missing" for r in range(3))
    dialog.show()
    dialog.grab().save(str(artifacts_dir / "style-weights-dialog.png"))

    assert _run(qtbot, window, dialog.import_file("vgg19.safetensors", vgg)) is True
    assert (folder / "vgg19.safetensors").is_file() and dialog.table.item(0, 3).text().startswith("installed")

    # A .pth is converted, only when the person agrees.
    pth = downloads / "decoder.pth"
    torch.save(load_file(str(decoder)), pth)
    dialog.ask_convert = lambda name: False
    assert _run(qtbot, window, dialog.import_file("adain-decoder.safetensors", pth)) is False
    assert not (folder / "adain-decoder.safetensors").exists()
    dialog.ask_convert = lambda name: True
    assert _run(qtbot, window, dialog.import_file("adain-decoder.safetensors", pth)) is True
    assert set(load_file(str(folder / "adain-decoder.safetensors"))) == set(load_file(str(decoder)))

    # Wrong files: the decoder offered as the encoder; a pickle with code renamed .safetensors.
    assert _run(qtbot, window, dialog.import_file("adain-vgg.safetensors", decoder)) is False
    assert "is not an AdaIN encoder (vgg_normalised) file" in dialog.message.text()
    sentinel = tmp_path / "sentinel"
    evil = downloads / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Sentinel(sentinel)))
    assert _run(qtbot, window, dialog.import_file("adain-vgg.safetensors", evil)) is False
    assert "is named .safetensors but is not a safetensors file" in dialog.message.text()
    evil_pth = downloads / "evil.pth"
    torch.save({"weight": Sentinel(sentinel)}, evil_pth)
    assert _run(qtbot, window, dialog.import_file("adain-vgg.safetensors", evil_pth)) is False
    assert "contains code or objects that a weights file should not have" in dialog.message.text()
    assert not sentinel.exists() and not (folder / "adain-vgg.safetensors").exists()
    assert _run(qtbot, window, dialog.import_file("adain-vgg.safetensors", encoder)) is True
    assert [p.name for p in folder.iterdir()] and not list(folder.glob(".*.part"))


def test_a_file_that_is_no_weights_file_is_not_called_a_pytorch_checkpoint(qtbot, window, tmp_path):
    """A picture or a text offered as weights was called "a PyTorch checkpoint, which can hold code"."""
    dialog = StyleWeightsDialog(window.service.env, window)
    qtbot.addWidget(dialog)
    dialog.ask_convert = lambda name: True
    for name, data in (("notes.txt", b"hello\n"), ("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(32)), ("x.pth", b"")):
        path = tmp_path / name
        path.write_bytes(data)
        assert _run(qtbot, window, dialog.import_file("vgg19.safetensors", path)) is False
        assert (f"{name} is not a weights file (neither safetensors nor a PyTorch checkpoint); it was not used."
                in dialog.message.text())
    assert not (style_weights_dir(window.service.env) / "vgg19.safetensors").exists()
