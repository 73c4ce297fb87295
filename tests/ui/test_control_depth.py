"""The Depth preprocessor on a guide card, on real widgets: with the depth model missing the card offers its
download (and Generate says why it cannot run), the download against a fake hub brings the model in and the
thumbnail becomes the photo's depth map, made in a worker thread; offline, the card says so and the other way."""

from __future__ import annotations

import importlib.abc
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hub_server import FakeHub, FakeRepo, isolated_hub_client
from PIL import Image, ImageOps
from PySide6.QtCore import Qt
from tiny_depth import build_tiny_depth, depth_model_in

from studio.core.annotators import DEPTH_FOLDER, DEPTH_REPO
from studio.core.control import DEPTH, place_control
from studio.core.errors import InvalidRequest
from studio.core.model_library import LibraryItem
from studio.core.models import ModelEntry
from studio.engine import depth_maps
from studio.ui import control_picture
from studio.ui.prompt_panel import PromptPanel

WAIT_MS = 20_000
SD15 = LibraryItem("dreamshaper_8", Path("/m/checkpoints/dreamshaper_8.safetensors"), "checkpoint", "sd1", "SD 1.x",
                   1, "models folder")
DEPTH_NET = LibraryItem("control_v11f1p_sd15_depth", Path("/m/controlnet/control_v11f1p_sd15_depth.safetensors"),
                        "controlnet", "sd1", "ControlNet", 1, "models folder")


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def panel(qtbot, qt_loop, models) -> PromptPanel:  # noqa: ANN001
    depth_maps.forget()
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_models([ModelEntry(SD15.name, SD15.path, SD15.label)], str(SD15.path), str(models))
    panel.control_box.set_library([SD15, DEPTH_NET], models)
    panel.prompt_edit.setPlainText("a cat")
    panel.resize(360, 900)
    panel.show()
    yield panel
    depth_maps.forget()


def _depth_guide(qtbot, panel, tmp_path: Path):  # noqa: ANN001, ANN202 - the card
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData(DEPTH))
    row.picture.use_file(photo)
    qtbot.waitUntil(lambda: row.picture.state == "ready" and panel.control_box.depth.known, timeout=WAIT_MS)
    return row


def _as_the_thumbnail_shows(models: Path, row) -> bytes:  # noqa: ANN001
    """The depth map of the card's picture, fitted to the job and shrunk as the thumbnail is: grey, and not the
    photo."""
    depth = depth_maps.depth_map(row.picture.image, models)
    seen = place_control(depth, row.picture.job_size, row.picture.start_size, row.picture.area_box)
    thumb = ImageOps.contain(seen, (control_picture.THUMB,) * 2, Image.Resampling.BILINEAR)
    pixels = np.asarray(thumb)
    assert (pixels[..., 0] == pixels[..., 2]).all() and pixels.max() > pixels.min()
    return thumb.tobytes()


def test_with_the_depth_model_missing_the_card_offers_it_and_the_download_brings_the_depth_map(
        qtbot, panel, models, tmp_path, monkeypatch):  # noqa: ANN001
    row = _depth_guide(qtbot, panel, tmp_path)
    offer = row.depth_offer
    assert row.preprocessor_combo.currentText() == "Depth (Depth Anything V2)"
    assert offer.isVisible() and offer.button.text() == "Download it (99 MB)"
    with pytest.raises(InvalidRequest, match="The control guide's Depth preprocessor needs the Depth Anything V2 "
                                             "Small model .*download it with the button on the guide's card"):
        panel.build_request(None)
    row.preprocessor_combo.setCurrentIndex(0)
    assert not offer.isVisible()  # only a Depth card offers it
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData(DEPTH))
    served = build_tiny_depth(tmp_path / "served")
    with isolated_hub_client(tmp_path / "hf-home", monkeypatch), \
            FakeHub({DEPTH_REPO: FakeRepo({p.name: p.read_bytes() for p in served.iterdir()})}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        qtbot.mouseClick(offer.button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.control_box.depth.folder is not None, timeout=WAIT_MS)
    assert panel.control_box.depth.folder == models / DEPTH_FOLDER and not offer.isVisible()
    expected = _as_the_thumbnail_shows(models, row)
    qtbot.waitUntil(lambda: row.picture.preview is not None and row.picture.preview.tobytes() == expected,
                    timeout=WAIT_MS)
    (guide,) = panel.build_request(None).controls
    assert guide.preprocessor == DEPTH


def test_with_the_depth_model_there_the_thumbnail_is_the_depth_map_made_off_the_window_s_thread(
        qtbot, qt_loop, models, tmp_path, monkeypatch):  # noqa: ANN001
    depth_model_in(models)
    threads: list[threading.Thread] = []
    real = depth_maps._run
    monkeypatch.setattr(depth_maps, "_run", lambda *a: threads.append(threading.current_thread()) or real(*a))
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_models([ModelEntry(SD15.name, SD15.path, SD15.label)], str(SD15.path), str(models))
    panel.control_box.set_library([SD15, DEPTH_NET], models)
    row = _depth_guide(qtbot, panel, tmp_path)
    assert not row.depth_offer.isVisible()
    # The thumbnail first: the map the test makes to compare it with, made here, would else race the card's worker
    # for the model, and the model would run on this thread (the kept map then serving the worker).
    qtbot.waitUntil(lambda: row.picture.preview is not None, timeout=WAIT_MS)
    assert threads and threading.main_thread() not in threads
    expected = _as_the_thumbnail_shows(models, row)  # from the kept map
    assert row.picture.preview.tobytes() == expected
    runs, previews = depth_maps.runs, row.picture._previews
    row.weight_spin.setValue(0.4)  # nothing the depth map depends on: the thumbnail made again from the kept map
    row.picture.refresh_preview(now=True)
    qtbot.waitUntil(lambda: row.picture._previews > previews and not len(row._tasks), timeout=WAIT_MS)
    assert depth_maps.runs == runs and row.picture.preview.tobytes() == expected
    depth_maps.forget()


def _download_offline(qtbot, panel, row, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Click the card's download with the hub out of reach, and wait for the card's answer."""
    with isolated_hub_client(tmp_path / "hf-home", monkeypatch):
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
        qtbot.mouseClick(row.depth_offer.button, Qt.MouseButton.LeftButton)
        depth = panel.control_box.depth
        # The card says it once the model has been looked for again, after the download ended.
        qtbot.waitUntil(lambda: bool(depth.error) and not depth.downloading and row.depth_offer.note.text() ==
                        depth.error, timeout=WAIT_MS)


def test_offline_the_card_says_so_and_where_the_files_go(qtbot, panel, models, tmp_path, monkeypatch):  # noqa: ANN001
    row = _depth_guide(qtbot, panel, tmp_path)
    _download_offline(qtbot, panel, row, tmp_path, monkeypatch)
    said = row.depth_offer.note.text()
    assert "Studio may be offline" in said and str(models / DEPTH_FOLDER) in said
    assert row.depth_offer.isVisible() and row.depth_offer.button.text().startswith("Download")


def test_the_first_click_on_download_imports_the_hub_client_off_the_window_s_thread(
        qtbot, panel, tmp_path, monkeypatch):  # noqa: ANN001
    """huggingface_hub takes a quarter of a second to import: imported on the window's thread, it held the window."""
    import studio.services

    name = "studio.services.model_downloads"
    imported_on: list[threading.Thread] = []

    class Spy(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN202
            if fullname == name:
                imported_on.append(threading.current_thread())
            return None  # the usual finders import it

    monkeypatch.delitem(sys.modules, name, raising=False)  # not imported yet, as in a window just opened
    if hasattr(studio.services, "model_downloads"):  # the package's attribute is put back as it was, too
        monkeypatch.setattr(studio.services, "model_downloads", studio.services.model_downloads)
    monkeypatch.setattr(sys, "meta_path", [Spy(), *sys.meta_path])
    row = _depth_guide(qtbot, panel, tmp_path)
    _download_offline(qtbot, panel, row, tmp_path, monkeypatch)
    assert imported_on and threading.main_thread() not in imported_on


def test_an_outpaint_extends_a_depth_guide_with_its_photo_s_depth_map(qtbot, panel, models, tmp_path):  # noqa: ANN001
    depth_model_in(models)
    panel.control_box.set_library([SD15, DEPTH_NET], models)
    row = _depth_guide(qtbot, panel, tmp_path)
    qtbot.waitUntil(lambda: panel.control_box.depth.folder is not None, timeout=WAIT_MS)
    photo = row.picture.image
    after = Image.new("RGB", (64 + 16, 48))
    panel.control_box._tasks.run(panel.control_box.follow_extend(photo, after, (16, 0, 0, 0)))
    qtbot.waitUntil(lambda: row.picture.image is not photo, timeout=WAIT_MS)
    pixels = np.asarray(row.picture.image)
    assert row.picture.image.size == (80, 48) and row.preprocessor() == "none"
    assert np.array_equal(pixels[:, 16:], np.asarray(depth_maps.depth_map(photo, models)))
    assert not pixels[:, :16].any()


def test_a_depth_model_deleted_since_the_card_looked_is_offered_again(qtbot, panel, models, tmp_path):  # noqa: ANN001
    folder = depth_model_in(models)
    panel.control_box.set_library([SD15, DEPTH_NET], models)
    row = _depth_guide(qtbot, panel, tmp_path)
    qtbot.waitUntil(lambda: row.picture.preview is not None, timeout=WAIT_MS)
    assert panel.control_box.depth.folder == folder and not row.depth_offer.isVisible()
    shutil.rmtree(folder)
    other = tmp_path / "other.png"
    Image.new("RGB", (40, 30), "grey").save(other)
    row.picture.use_file(other)  # its map needs the model that is gone
    qtbot.waitUntil(row.depth_offer.isVisible, timeout=WAIT_MS)
    assert row.picture.thumb.text() == "No preview" and panel.control_box.depth.folder is None
    with pytest.raises(InvalidRequest, match="download it with the button on the guide's card"):
        panel.build_request(None)


def test_a_broken_depth_model_is_said_on_the_card_once(qtbot, panel, models, tmp_path):  # noqa: ANN001
    folder = depth_model_in(models)
    (folder / "model.safetensors").write_bytes(b"not weights")
    panel.control_box.set_library([SD15, DEPTH_NET], models)
    row = _depth_guide(qtbot, panel, tmp_path)
    qtbot.waitUntil(lambda: "could not be loaded" in row.picture.status.text(), timeout=WAIT_MS)
    assert str(folder) in row.picture.status.text() and row.picture.status.property("error")
    assert row.picture.thumb.text() == "No preview" and not row.depth_offer.isVisible()
    previews = row.picture._previews
    qtbot.wait(500)
    assert row.picture._previews == previews  # looked for again and found: the preview is not made again and again
