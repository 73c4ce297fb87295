"""Editing on the canvas: mask tools under real mouse events, undo/redo, saving, what the canvas shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from canvas_testing import SIZE, drag, open_test_picture
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.mask import new_mask, stroke_segment
from studio.ui.canvas_tools import BRUSH, ERASER, LASSO, RECT
from studio.ui.qt_images import pil_to_qimage


@pytest.fixture
def picture(window):  # noqa: ANN001, ANN201
    return open_test_picture(window)


@pytest.mark.parametrize("zoom", [0.75, 2.0])
def test_brush_and_eraser_strokes_paint_the_expected_pixels(qtbot, window, picture, zoom):  # noqa: ANN001
    canvas = window.canvas
    canvas.set_zoom(zoom)
    canvas.centerOn(SIZE / 2, SIZE / 2)
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=20, hardness=1.0)
    seen = drag(qtbot, canvas, [(60, 60), (100, 80), (140, 120)])
    expected = new_mask(SIZE, SIZE)
    for a, b in zip([seen[0], *seen], seen):
        stroke_segment(expected, a, b, 20, 1.0)
    np.testing.assert_array_equal(window.document.mask, expected)
    assert window.document.mask[80, 100] == 255 and window.document.mask[200, 30] == 0

    canvas.set_tool(ERASER)
    canvas.set_brush(size=10, hardness=0.5)
    erased = drag(qtbot, canvas, [(90, 60), (110, 100)])
    for a, b in zip([erased[0], *erased], erased):
        stroke_segment(expected, a, b, 10, 0.5, erase=True)
    np.testing.assert_array_equal(window.document.mask, expected)
    assert window.document.history_labels()[-2:] == ["Paint mask", "Erase mask"]


def test_right_button_erases_with_the_brush(qtbot, window, picture):  # noqa: ANN001
    window.canvas.set_tool(BRUSH)
    window.canvas.set_brush(size=30, hardness=1.0)
    drag(qtbot, window.canvas, [(50, 50), (150, 50)])
    assert window.document.mask[50, 100] == 255
    drag(qtbot, window.canvas, [(100, 30), (100, 70)], button=Qt.MouseButton.RightButton)
    assert window.document.mask[50, 100] == 0
    assert window.document.mask[50, 60] == 255


def test_rectangle_and_lasso_fill_and_alt_subtracts(qtbot, window, picture):  # noqa: ANN001
    canvas = window.canvas
    canvas.set_tool(RECT)
    seen = drag(qtbot, canvas, [(20, 30), (120, 90)])
    x0, y0, x1, y1 = (round(v) for v in (*seen[0], *seen[-1]))
    assert window.document.mask[y0:y1, x0:x1].min() == 255
    assert window.document.mask[y1 + 2:, :].max() == 0
    canvas.set_tool(LASSO)
    drag(qtbot, canvas, [(150, 150), (230, 150), (230, 230), (150, 230)])
    assert window.document.mask[190, 190] == 255
    viewport = canvas.viewport()
    canvas.set_tool(RECT)
    start, end = canvas.mapFromScene(QPointF(40, 40)), canvas.mapFromScene(QPointF(60, 60))
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier, start)
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier, end)
    assert window.document.mask[50, 50] == 0 and window.document.mask[35, 100] == 255


def test_bracket_keys_resize_the_brush_and_the_cursor_follows(qtbot, window, picture):  # noqa: ANN001
    canvas = window.canvas
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=40)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > 40
    assert window.mask_toolbar.size_spin.value() == round(canvas.brush_size)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < 40
    qtbot.mouseMove(canvas.viewport(), canvas.mapFromScene(QPointF(100, 100)))
    outline = canvas._cursor_scene_rect()
    assert abs(outline.width() - (canvas.brush_size + 8 / canvas.zoom())) < 1e-6


def test_undo_and_redo_restore_exact_states(qtbot, window, picture):  # noqa: ANN001
    doc, canvas = window.document, window.canvas
    states = [(np.asarray(doc.image).copy(), doc.mask.copy())]

    def remember() -> None:
        states.append((np.asarray(doc.image).copy(), doc.mask.copy()))

    canvas.set_tool(BRUSH)
    canvas.set_brush(size=25, hardness=0.6)
    drag(qtbot, canvas, [(30, 30), (200, 200)])
    remember()
    for edit in (window.actions_.invert, lambda: window.actions_.grow(6)):  # one after the other: each state seen
        task = edit()
        qtbot.waitUntil(task.done, timeout=5000)
        remember()
    changed = np.asarray(picture).copy()
    changed[10:40, 10:40] = 0
    doc.set_image(Image.fromarray(changed), "Generated")
    remember()
    window.actions_.extend_canvas(16, 0, 32, 8, fill=False)
    qtbot.waitUntil(lambda: doc.size == (SIZE + 48, SIZE + 8), timeout=5000)
    remember()
    window.actions_.scale_image(100, 80)
    qtbot.waitUntil(lambda: doc.size == (100, 80), timeout=5000)
    remember()
    for index in range(len(states) - 1, 0, -1):
        window.actions_.undo.trigger()
        image, mask = states[index - 1]
        np.testing.assert_array_equal(np.asarray(doc.image), image)
        np.testing.assert_array_equal(doc.mask, mask)
    assert not doc.can_undo() or doc.history_labels()[0] == "Open test picture"
    for index in range(1, len(states)):
        window.actions_.redo.trigger()
        image, mask = states[index]
        np.testing.assert_array_equal(np.asarray(doc.image), image)
        np.testing.assert_array_equal(doc.mask, mask)
    qtbot.waitUntil(lambda: window.history_panel.count() == len(doc.history_labels()) + 1, timeout=2000)
    window.history_panel.position_requested.emit(1)
    np.testing.assert_array_equal(np.asarray(doc.image), states[0][0])


def test_a_result_landing_mid_stroke_waits_for_the_stroke(qtbot, window, picture):  # noqa: ANN001
    from studio.core.events import GeneratedImage, JobOutput
    from studio.core.metadata import Recipe

    canvas = window.canvas
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=20, hardness=1.0)
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(50, 50)))
    qtbot.mouseMove(viewport, canvas.mapFromScene(QPointF(90, 50)))
    result = Image.new("RGB", (SIZE, SIZE), (0, 200, 0))
    recipe = Recipe("p", "", 4, "Euler", 7, 1, SIZE, SIZE, "tiny-sd")
    window.handle_event(JobOutput(1, GeneratedImage(result, recipe), 0))
    assert np.asarray(window.document.image)[0, 0].tolist() == np.asarray(picture)[0, 0].tolist()
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(90, 50)))
    assert np.asarray(window.document.image)[0, 0].tolist() == [0, 200, 0]
    assert window.document.mask[50, 70] == 255  # the stroke survived the result
    assert window.document.history_labels()[-2:] == ["Paint mask", "Generated"]


def test_results_waiting_behind_a_stroke_are_compared_and_converted_ahead_and_redrawn_once(
        qtbot, window, picture, monkeypatch):  # noqa: ANN001
    """Two results land during one brush stroke (a fast GPU makes a batch in a second): each becomes its own
    undo step, found by a comparison made off the window's thread against the result before it (the parts the
    step keeps cut out there too), and when the stroke ends the canvas redraws once, from the last one's conversion
    made ahead."""
    import asyncio
    import threading

    from studio.core import comparison
    from studio.core.events import GeneratedImage, JobOutput
    from studio.core.metadata import Recipe
    from studio.ui import canvas_picture

    window_thread = threading.current_thread()
    compared_here: list[tuple[int, int]] = []
    cut_here: list[tuple[int, int, int, int]] = []
    compare, real_pixmap = comparison.changed_box, canvas_picture.pil_to_qpixmap
    real_region = comparison.region

    def comparing(a, b):  # noqa: ANN001, ANN202
        if threading.current_thread() is window_thread:
            compared_here.append(a.size)
        return compare(a, b)

    def cutting(image, box):  # noqa: ANN001, ANN202
        if threading.current_thread() is window_thread:
            cut_here.append(box)
        return real_region(image, box)

    def on_this_thread(image):  # noqa: ANN001, ANN202
        raise AssertionError("the canvas converted a whole result on the window's thread")

    monkeypatch.setattr(comparison, "changed_box", comparing)
    monkeypatch.setattr(comparison, "region", cutting)
    monkeypatch.setattr(canvas_picture, "pil_to_qpixmap", on_this_thread)
    first, second = picture.copy(), picture.copy()
    first.paste((250, 0, 0), (10, 10, 60, 60))
    second.paste((250, 0, 0), (10, 10, 60, 60))
    second.paste((0, 0, 250), (100, 100, 150, 150))
    recipe = Recipe("p", "", 4, "Euler", 7, 1, SIZE, SIZE, "tiny-sd")
    changes: list = []
    window.document.add_listener(lambda change: changes.append(change))

    canvas, viewport = window.canvas, window.canvas.viewport()
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=20, hardness=1.0)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(200, 30)))
    qtbot.mouseMove(viewport, canvas.mapFromScene(QPointF(230, 30)))

    async def arrive() -> None:  # as JobEvents takes each JobOutput
        for result in (first, second):
            await window.results.take_in_ahead(result, None)
            window.handle_event(JobOutput(1, GeneratedImage(result, recipe), 0))

    arrived = asyncio.ensure_future(arrive())
    qtbot.waitUntil(arrived.done, timeout=5000)
    arrived.result()
    assert window.document.image is picture  # nothing under the person's brush
    changes.clear()
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(230, 30)))

    doc = window.document
    assert doc.image is second and doc.history_labels()[-3:] == ["Paint mask", "Generated", "Generated"]
    assert [s.box for s in doc._steps[-2:]] == [(10, 10, 60, 60), (100, 100, 150, 150)]
    assert compared_here == [] and cut_here == []  # both boxes were found ahead, and their parts cut out
    assert [c.box for c in changes if c.image] == [(10, 10, 150, 150)]  # one redraw, around both
    shown = canvas._image_item.pixmap().toImage().convertToFormat(pil_to_qimage(second).format())
    assert shown == pil_to_qimage(second)
    monkeypatch.setattr(canvas_picture, "pil_to_qpixmap", real_pixmap)
    doc.undo()
    assert doc.image.tobytes() == first.tobytes()
    assert doc.mask[30, 215] == 255  # the stroke is still there


def test_saving_adds_the_extension_to_a_name_with_a_dot_and_asks_before_replacing(
        qtbot, window, picture, tmp_path, monkeypatch):  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog

    from studio.ui import picture_saving

    asked: list[str] = []
    answer = [True]
    monkeypatch.setattr(picture_saving, "ask", lambda parent, title, text: asked.append(text) or answer[0])
    chosen = [str(tmp_path / "Mr. Smith"), "PNG image (*.png)"]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: tuple(chosen))
    (tmp_path / "Mr.png").write_bytes(b"an earlier picture")
    window.actions_.saving.save_image_dialog()
    qtbot.waitUntil(lambda: (tmp_path / "Mr. Smith.png").exists(), timeout=5000)
    assert (tmp_path / "Mr.png").read_bytes() == b"an earlier picture" and asked == []

    chosen[1] = "WebP image (*.webp)"
    window.actions_.saving.save_image_dialog()
    qtbot.waitUntil(lambda: (tmp_path / "Mr. Smith.webp").exists(), timeout=5000)

    window.document.edit_mask("box", lambda m: (m.__setitem__((slice(0, 9), slice(0, 9)), 255), (0, 0, 9, 9))[1])
    chosen[:] = [str(tmp_path / "Mr. Smith"), "PNG image (*.png)"]  # the picture saved above, by name
    answer[0] = False
    window.actions_.saving.save_mask_dialog()
    assert asked == ["Mr. Smith.png already exists. Replace it?"]
    assert Image.open(tmp_path / "Mr. Smith.png").size == (SIZE, SIZE)  # not replaced
    chosen[0] = str(tmp_path / "face.mask v1")
    window.actions_.saving.save_mask_dialog()
    qtbot.waitUntil(lambda: (tmp_path / "face.mask v1.png").exists(), timeout=5000)
    assert not (tmp_path / "face.png").exists() and len(asked) == 1


def test_saving_under_another_file_type_is_refused_with_a_sentence_and_nothing_written(
        qtbot, window, picture, tmp_path, monkeypatch):  # noqa: ANN001
    """x.gif was saved as "x.gif.png", a PNG under a name the person did not give; Studio writes PNG, JPEG and WebP
    (what the dialog offers), so another picture type's extension is refused, saying which ones it writes."""
    from PySide6.QtWidgets import QFileDialog

    warnings: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append((title, text)))
    folder = tmp_path / "saved"
    folder.mkdir()
    chosen = [str(folder / "x.gif"), "PNG image (*.png)"]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: tuple(chosen))
    window.actions_.saving.save_image_dialog()
    qtbot.waitUntil(lambda: len(warnings) == 1, timeout=5000)
    assert warnings[0] == ("Save Canvas", "Studio cannot save .gif files; it saves pictures as PNG (.png), JPEG "
                                          "(.jpg, .jpeg) or WebP (.webp). Nothing was saved.")
    chosen[:] = [str(folder / "x.TGA"), "WebP image (*.webp)"]  # a type Pillow knows, if not the system's list
    window.actions_.saving.save_image_dialog()
    qtbot.waitUntil(lambda: len(warnings) == 2, timeout=5000)
    assert warnings[1][1].startswith("Studio cannot save .TGA files;")

    window.document.edit_mask("box", lambda m: (m.__setitem__((slice(0, 9), slice(0, 9)), 255), (0, 0, 9, 9))[1])
    chosen[:] = [str(folder / "mask.jpg"), "PNG image (*.png)"]
    window.actions_.saving.save_mask_dialog()
    qtbot.waitUntil(lambda: len(warnings) == 3, timeout=5000)
    assert warnings[2] == ("Save Mask", "Studio cannot save .jpg files; it saves masks as PNG (.png). Nothing was "
                                        "saved.")
    assert list(folder.iterdir()) == []
    assert window.document.history_labels()[-1] == "box"  # the canvas is as it was


def test_a_name_ending_in_a_type_that_is_no_picture_s_gets_the_extension_whatever_the_system_lists(
        qtbot, window, picture, tmp_path, monkeypatch):  # noqa: ANN001
    """Only picture types are refused: cat.me, sunset.com or sketch.c were refused ('Studio cannot save .me
    files') because the system's MIME list (/etc/mime.types) names troff, DOS programs and C source; what it lists
    differs from one computer to the next. .zq is added to this one's list here so the test holds anywhere."""
    import mimetypes

    from PySide6.QtWidgets import QFileDialog

    mimetypes.init()  # types_map is then the list guess_type reads
    monkeypatch.setitem(mimetypes.types_map, ".zq", "application/x-studio-test")
    assert mimetypes.guess_type("bird.zq")[0] == "application/x-studio-test"
    warnings: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append((title, text)))
    chosen = ["", "PNG image (*.png)"]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: tuple(chosen))
    saved = tmp_path / "saved"
    saved.mkdir()
    names = ("cat.me", "sunset.com", "scene.ms", "sketch.c", "a.m", "mix.es", "shot.t", "cat.so", "bird.zq")
    for name in names:
        chosen[0] = str(saved / name)
        window.actions_.saving.save_image_dialog()
        qtbot.waitUntil(lambda name=name: (saved / f"{name}.png").exists() or bool(warnings), timeout=5000)
        assert warnings == []
    assert sorted(p.name for p in saved.iterdir()) == sorted(f"{n}.png" for n in names)

    folder = tmp_path / "refused"
    folder.mkdir()
    refused = ("x.gif", "x.tga", "x.bmp", "x.svg", "x.heic")  # Pillow's formats, and common ones it lacks
    for name in refused:
        chosen[0] = str(folder / name)
        window.actions_.saving.save_image_dialog()
    qtbot.waitUntil(lambda: len(warnings) == len(refused), timeout=5000)
    assert [text.split(";")[0] for _, text in warnings] == [
        f"Studio cannot save {Path(name).suffix} files" for name in refused]
    assert list(folder.iterdir()) == []


def _landscape(size: int) -> Image.Image:
    """A simple drawn scene (sky, sun, hills), so the screenshot shows the mask over a picture."""
    from PIL import ImageDraw

    y = np.linspace(0, 1, size)[:, None, None]
    sky = (np.array([40, 70, 140]) * (1 - y) + np.array([250, 170, 120]) * y).repeat(size, axis=1)
    image = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((150, 60, 200, 110), fill=(255, 226, 150))
    draw.polygon([(0, 180), (70, 140), (140, 175), (210, 135), (256, 160), (256, 256), (0, 256)], fill=(40, 70, 60))
    draw.polygon([(0, 215), (90, 190), (180, 215), (256, 200), (256, 256), (0, 256)], fill=(25, 45, 40))
    return image


def test_screenshot_with_a_painted_mask(qtbot, window, artifacts_dir):  # noqa: ANN001
    window.document.set_image(_landscape(SIZE), "Open landscape")
    canvas = window.canvas
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=36, hardness=0.7)
    drag(qtbot, canvas, [(60, 180), (100, 150), (150, 140), (190, 100)])
    canvas.set_tool(LASSO)
    drag(qtbot, canvas, [(30, 30), (90, 20), (110, 70), (50, 90)])
    canvas.set_tool(BRUSH)
    qtbot.mouseMove(canvas.viewport(), canvas.mapFromScene(QPointF(200, 200)))
    panel = window.prompt_panel
    # As a person sees it: the inpaint settings shown, laid out and scrolled into view (a grab in between caught
    # the panel's rows half laid out, over each other).
    qtbot.waitUntil(lambda: panel.inpaint_box.isVisible() and panel._scroll.verticalScrollBar().value() > 0,
                    timeout=2000)
    window.grab().save(str(artifacts_dir / "mask-editing.png"))


def test_a_preview_of_a_bigger_job_refits_the_view_only_when_the_stroke_ends(qtbot, window, picture):  # noqa: ANN001
    """A preview of a 1024² job landing mid-stroke re-fitted the view at once: the picture moved under the pointer
    and the stroke jumped across it."""
    canvas = window.canvas
    canvas.fit()
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=6, hardness=1.0)
    viewport = canvas.viewport()
    start = canvas.mapFromScene(QPointF(40, 40))
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(20, 0))
    zoom, under = canvas.zoom(), canvas.mapToScene(start + QPoint(20, 0))
    canvas.show_preview(Image.new("RGB", (128, 128)), 4 * SIZE, 4 * SIZE)
    assert canvas.zoom() == zoom and canvas.mapToScene(start + QPoint(20, 0)) == under
    qtbot.mouseMove(viewport, start + QPoint(22, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=start + QPoint(22, 0))
    columns = np.flatnonzero(window.document.mask.any(axis=0))
    assert columns.max() < 40 + 22 / zoom + 6  # the stroke ended where the pointer was on the picture
    assert canvas.zoom() < zoom  # fitted to the preview's size once the stroke was done


def _shown(canvas) -> np.ndarray:  # noqa: ANN001
    """The canvas's picture as it is drawn."""
    from studio.ui.qt_images import qimage_to_pil

    return np.asarray(qimage_to_pil(canvas._image_item.pixmap().toImage()).convert("RGB"))


def test_the_canvas_shows_a_changed_region_and_its_undo_exactly(qtbot, window, picture):  # noqa: ANN001
    changed = np.asarray(picture).copy()
    changed[10:20, 30:50] = 7
    window.document.set_image(Image.fromarray(changed), "Generated")
    np.testing.assert_array_equal(_shown(window.canvas), changed)
    window.actions_.undo.trigger()
    np.testing.assert_array_equal(_shown(window.canvas), np.asarray(picture))


def test_a_changed_region_is_painted_into_the_shown_pixmap_without_copying_all_of_it(qtbot, window, picture):  # noqa: ANN001
    """Painting into a pixmap the item still shared copied the whole picture first: 50-100 ms at 4096x4096."""

    def pixels_address() -> int:
        shown = window.canvas._image_item.pixmap().toImage()  # shares the pixmap's pixels while it lives
        return np.frombuffer(shown.constBits(), dtype=np.uint8).ctypes.data

    before = pixels_address()
    if pixels_address() != before:
        pytest.skip("this platform's pixmaps are not raster images the test can look into")
    changed = np.asarray(picture).copy()
    changed[40:60, 70:90] = 3
    window.document.set_image(Image.fromarray(changed), "Generated")
    assert pixels_address() == before
    np.testing.assert_array_equal(_shown(window.canvas), changed)


def test_a_picture_converted_ahead_is_shown_without_converting_it_again(qtbot, monkeypatch):  # noqa: ANN001
    """The window converts a result off its thread (canvas.prepare); taking it in then converts nothing here,
    for a whole new picture and for a changed region alike. Any other picture is converted as before."""
    from studio.core.document import Document
    from studio.ui import canvas_picture
    from studio.ui.canvas import CanvasView
    from studio.ui.qt_images import pil_to_pixmap_ready_qimage

    canvas = CanvasView()
    qtbot.addWidget(canvas)
    document = Document()
    canvas.set_document(document)
    rng = np.random.default_rng(3)
    first = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    second_pixels = np.asarray(first).copy()
    second_pixels[5:20, 10:30] = 9
    second = Image.fromarray(second_pixels)
    converted: list[str] = []
    for name in ("pil_to_qpixmap", "pil_to_qimage"):
        original = getattr(canvas_picture, name)
        monkeypatch.setattr(canvas_picture, name, lambda image, _f=original, _n=name: converted.append(_n) or _f(image))

    canvas.prepare(first, pil_to_pixmap_ready_qimage(first))
    document.set_image(first, "Generated")
    np.testing.assert_array_equal(_shown(canvas), np.asarray(first))
    canvas.prepare(second, pil_to_pixmap_ready_qimage(second))
    document.set_image(second, "Generated")  # same size: only the changed box is redrawn, from the prepared one
    np.testing.assert_array_equal(_shown(canvas), second_pixels)
    assert converted == []

    other = first.copy()
    canvas.prepare(other, pil_to_pixmap_ready_qimage(other))  # prepared, but another picture is taken in
    document.undo()
    np.testing.assert_array_equal(_shown(canvas), np.asarray(first))
    assert converted == ["pil_to_qimage"]


def test_undo_and_redo_of_a_whole_canvas_change_swap_pictures_without_converting(qtbot, monkeypatch):  # noqa: ANN001
    """The picture shown before a whole-canvas change stays converted while the history holds it: at 4096x4096
    converting it again for an undo held the window 100-160 ms."""
    from studio.core.document import Document
    from studio.ui import canvas_picture
    from studio.ui.canvas import CanvasView

    canvas = CanvasView()
    qtbot.addWidget(canvas)
    document = Document()
    canvas.set_document(document)
    rng = np.random.default_rng(6)
    small, big = (Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
                  for w, h in ((64, 48), (96, 48)))
    document.set_image(small, "Open")
    converted: list[Image.Image] = []
    real = canvas_picture.pil_to_qpixmap
    monkeypatch.setattr(canvas_picture, "pil_to_qpixmap", lambda image: converted.append(image) or real(image))

    document.replace_all("Extend", big, np.zeros((48, 96), np.uint8))
    assert converted == [big]
    for _ in range(2):
        document.undo()
        np.testing.assert_array_equal(_shown(canvas), np.asarray(small))
        document.redo()
        np.testing.assert_array_equal(_shown(canvas), np.asarray(big))
    assert converted == [big]

    edited = np.asarray(big).copy()
    edited[4:8, 4:8] = 0
    document.set_image(Image.fromarray(edited), "Generated")  # a region: the kept picture is still the earlier one
    document.go_to(1)
    np.testing.assert_array_equal(_shown(canvas), np.asarray(small))
    assert converted == [big]
    document.go_to(3)
    # The region step holds its picture (the one shown before the jump back): its kept pixmap is swapped in.
    np.testing.assert_array_equal(_shown(canvas), edited)
    assert converted == [big]
    document.set_image(Image.fromarray(np.asarray(small)), "Open")  # a new size, not converted ahead
    document.undo()  # back to the edited picture: still kept
    np.testing.assert_array_equal(_shown(canvas), edited)
    assert len(converted) == 2


def test_a_picture_with_alpha_converted_ahead_keeps_its_pixels() -> None:
    from studio.ui.qt_images import pil_to_pixmap_ready_qimage, qimage_to_pil

    pixels = np.random.default_rng(4).integers(0, 256, (16, 24, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:4, :4, 3] = 0
    converted = pil_to_pixmap_ready_qimage(Image.fromarray(pixels, "RGBA"))
    back = np.asarray(qimage_to_pil(converted))
    np.testing.assert_array_equal(back[4:, 4:], pixels[4:, 4:])  # opaque pixels are exact
    assert (back[:4, :4, 3] == 0).all()
    grey = pil_to_pixmap_ready_qimage(Image.new("L", (8, 8), 77))
    assert qimage_to_pil(grey).getpixel((3, 3)) == (77, 77, 77)


def test_a_second_button_pressed_mid_stroke_leaves_the_stroke_whole_in_undo(qtbot, window, picture):  # noqa: ANN001
    canvas = window.canvas
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=20, hardness=1.0)
    viewport = canvas.viewport()
    points = [canvas.mapFromScene(QPointF(x, 60)) for x in (40, 80, 120)]
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=points[0])
    qtbot.mouseMove(viewport, points[1])
    qtbot.mousePress(viewport, Qt.MouseButton.RightButton, pos=points[1])  # the right one too, while painting
    qtbot.mouseMove(viewport, points[2])
    qtbot.mouseRelease(viewport, Qt.MouseButton.RightButton, pos=points[2])
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=points[2])
    assert window.document.history_labels() == ["Open test picture", "Paint mask"]
    assert window.document.mask.any()
    window.document.undo()
    assert not window.document.mask.any()  # the whole stroke goes back


def test_compare_shows_the_checkerboard_where_the_picture_before_was_transparent(qtbot, window):  # noqa: ANN001
    """Compare drew the picture before over the current one: where the earlier (a cut-out) was transparent, the
    new picture showed through, as if it had been there before."""
    from studio.ui.qt_images import qimage_to_pil

    cutout = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    cutout.paste((200, 200, 200, 255), (SIZE // 2, 0, SIZE, SIZE))
    window.document.set_image(cutout, "Open cutout")
    window.document.set_image(Image.new("RGBA", (SIZE, SIZE), (255, 0, 0, 255)), "Filter")
    canvas = window.canvas
    canvas.set_zoom(1.0)
    canvas.centerOn(SIZE / 2, SIZE / 2)

    def shown_at(x: int, y: int) -> tuple[int, int, int]:
        point = canvas.mapFromScene(QPointF(x, y))
        return qimage_to_pil(canvas.viewport().grab().toImage()).convert("RGB").getpixel((point.x(), point.y()))

    assert shown_at(40, SIZE // 2) == (255, 0, 0)
    window.plugin_actions.compare.trigger()
    red, green, blue = shown_at(40, SIZE // 2)
    assert red < 80 and abs(red - green) < 10 and abs(green - blue) < 15  # the dark checkerboard, no red
    assert shown_at(SIZE - 40, SIZE // 2) == (200, 200, 200)
    window.plugin_actions.compare.trigger()
    assert shown_at(40, SIZE // 2) == (255, 0, 0)


def test_compare_shows_the_changed_region_where_it_was_and_refuses_a_picture_of_another_size(  # noqa: ANN001
        qtbot, window, picture):
    from studio.core.inpaint import extend_canvas

    window.document.edit_mask("box", lambda m: (m.__setitem__((slice(10, 30), slice(20, 60)), 255),
                                                (20, 10, 60, 30))[1])
    changed = picture.copy()
    changed.paste((250, 0, 0), (20, 10, 60, 30))
    window.document.set_image(changed, "Generated")
    compare = window.plugin_actions.compare
    compare.trigger()
    item = window.canvas.preview.item
    assert window.canvas.has_preview() and (item.pos().x(), item.pos().y()) == (20, 10)
    assert (item.pixmap().width(), item.pixmap().height()) == (40, 20)  # the region only, not the whole picture
    compare.trigger()
    bigger, mask = extend_canvas(changed, window.document.mask, 8, 8, 8, 8)
    window.document.replace_all("Extend canvas", bigger, mask)
    compare.trigger()
    assert not window.canvas.has_preview() and not compare.isChecked()
    assert window.status.message_label.text() == (f"The picture before the last change was {SIZE}x{SIZE}; compare "
                                                  "shows pictures of the same size.")


def test_a_picture_shown_again_while_its_first_conversion_runs_is_converted_once(qtbot, qt_loop, monkeypatch):  # noqa: ANN001
    """A, then B (its pixmap kept), then A again: the first conversion of A gives up when the second starts, rather
    than both running to the end side by side."""
    from studio.core.document import Document
    from studio.ui import canvas_picture
    from studio.ui.canvas import CanvasView
    from studio.ui.qt_images import ConversionCancelled

    ended, real = [], canvas_picture.pil_to_pixmap_ready_qimage

    def recorded(image, cancelled=None):  # noqa: ANN001, ANN202
        try:
            converted = real(image, cancelled)
        except ConversionCancelled:
            ended.append((image, "given up"))
            raise
        ended.append((image, "converted"))
        return converted

    monkeypatch.setattr(canvas_picture, "pil_to_pixmap_ready_qimage", recorded)
    view, doc = CanvasView(), Document()
    qtbot.addWidget(view)
    view.set_document(doc)
    b, a = (Image.fromarray(np.random.default_rng(seed).integers(0, 255, (3000, 3000, 3), np.uint8)) for seed in (1, 2))
    view.prepare(b, real(b))
    doc.set_image(b, "Open B")
    doc.set_image(a, "Open A")  # not converted ahead: its stand-in shown, a worker converts it
    doc.undo()  # B again, from its kept pixmap
    doc.redo()  # A again: a second conversion of A
    qtbot.waitUntil(lambda: not view.showing_stand_in(), timeout=30_000)
    qtbot.waitUntil(lambda: len([e for e in ended if e[0] is a]) == 2, timeout=30_000)
    assert [state for picture, state in ended if picture is a] == ["given up", "converted"]


def test_undo_and_redo_say_which_generated_picture_they_took_back_in_the_line_and_the_menu(window, picture):  # noqa: ANN001
    from studio.core.metadata import Recipe
    from studio.ui.result_arrival import GENERATED

    recipe = Recipe("a red fox & a hare in the snow", "", 4, "Euler", 7, 42, SIZE, SIZE, "tiny-sd")
    window.document.set_image(Image.new("RGB", (SIZE, SIZE), "red"), GENERATED, recipe)
    named = "Generated 'a red fox & a hare in th…' (seed 42)"
    undo, redo = window.actions_.undo, window.actions_.redo
    assert undo.text() == f"&Undo {named.replace('&', '&&')}" and undo.toolTip() == f"Undo {named}"
    undo.trigger()
    assert window.status.message_label.text() == f"Undid {named}."
    assert (undo.text(), redo.text()) == ("&Undo Open test picture", f"&Redo {named.replace('&', '&&')}")
    redo.trigger()
    assert window.status.message_label.text() == f"Redid {named}."
    assert redo.text() == "&Redo" and redo.toolTip() == "Redo"
