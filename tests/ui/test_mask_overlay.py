"""The mask's tinted layer: made only when a masked pixel needs it, then updated box by box."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem

from studio.core.mask import new_mask
from studio.ui.mask_overlay import DEFAULT_OPACITY, MaskOverlayItem

SHOWN_ALPHA = round(255 * DEFAULT_OPACITY)


def shown(item: MaskOverlayItem) -> np.ndarray:
    """The item as it paints itself over its whole extent: premultiplied 0xAARRGGBB per pixel."""
    rect = item.boundingRect()
    target = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_ARGB32_Premultiplied)
    target.fill(0)
    option = QStyleOptionGraphicsItem()
    option.exposedRect = rect
    painter = QPainter(target)
    item.paint(painter, option)
    painter.end()
    pixels = np.frombuffer(target.constBits(), dtype=np.uint32, count=target.width() * target.height())
    return pixels.reshape(target.height(), target.width()).copy()


def alpha(pixels: np.ndarray) -> np.ndarray:
    return pixels >> 24


def test_a_new_pictures_empty_mask_makes_no_layer_until_a_stroke_needs_one(qapp) -> None:  # noqa: ANN001
    item = MaskOverlayItem()
    mask = new_mask(40, 30)
    item.set_mask(mask)
    assert item._image.isNull()  # nothing allocated for a 1024x1024 result's empty mask
    assert item.boundingRect() == QRectF(0, 0, 40, 30)
    mask[5:9, 10:20] = 255  # a stroke, as the document makes it
    item.update_region((10, 5, 20, 9))
    assert not item._image.isNull() and (item._image.width(), item._image.height()) == (40, 30)
    expected = np.zeros((30, 40), dtype=np.uint32)
    expected[5:9, 10:20] = SHOWN_ALPHA
    np.testing.assert_array_equal(alpha(shown(item)), expected)


def test_a_mask_with_pixels_is_shown_at_once_and_restyled(qapp) -> None:  # noqa: ANN001
    item = MaskOverlayItem()
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[:, :8] = 255
    item.set_mask(mask)
    assert (alpha(shown(item)) == np.where(mask > 0, SHOWN_ALPHA, 0)).all()
    item.set_style("#00ff00", 1.0)
    assert shown(item)[3, 3] == 0xFF00FF00 and shown(item)[3, 12] == 0
    item.set_mask(new_mask(16, 16))  # a new picture: the old layer goes
    assert item._image.isNull()


def test_a_strip_of_mask_gets_a_layer_over_the_strip_alone_until_an_edit_outside_it(qapp) -> None:  # noqa: ANN001
    """An extended canvas's mask is a strip: clearing a layer the size of a 4096x4096 picture for it held the
    window 30-70 ms. Every pixel must show as before, also once a stroke outside widens the layer."""
    item = MaskOverlayItem()
    mask = np.zeros((50, 80), dtype=np.uint8)
    mask[:, 60:] = 255
    mask[10:20, 56:60] = 128
    item.set_mask(mask)
    assert (item._image.width(), item._image.height()) == (24, 50)
    expected = mask.astype(np.uint32) * SHOWN_ALPHA // 255
    np.testing.assert_array_equal(alpha(shown(item)), expected)
    mask[30:34, 70:75] = 0  # an erase inside the strip keeps the narrow layer
    item.update_region((70, 30, 75, 34))
    assert item._image.width() == 24
    mask[2:6, 3:9] = 255  # a stroke outside it
    item.update_region((3, 2, 9, 6))
    assert (item._image.width(), item._image.height()) == (80, 50)
    np.testing.assert_array_equal(alpha(shown(item)), mask.astype(np.uint32) * SHOWN_ALPHA // 255)
    item.set_style("#0000ff", 1.0)
    assert shown(item)[3, 5] == shown(item)[40, 70] == 0xFF0000FF
    np.testing.assert_array_equal(alpha(shown(item)), mask)


def test_a_layer_made_ahead_or_shown_before_is_taken_for_a_mask_like_it_and_only_then(qapp, monkeypatch) -> None:  # noqa: ANN001
    """Tinting a whole 4096x4096 mask takes the window 100-130 ms: a layer made in a worker thread for a coming
    mask (extend, scale) is used as it is, and so is the last mask's own layer when an undo brings that mask back.
    A layer for other pixels or other tints never is."""
    from studio.ui import mask_overlay

    tinted: list[tuple[int, ...]] = []
    real_tint = mask_overlay._tint
    monkeypatch.setattr(mask_overlay, "_tint", lambda pixels, mask, tints: tinted.append(mask.shape)
                        or real_tint(pixels, mask, tints))
    item = MaskOverlayItem()
    first = np.zeros((40, 60), dtype=np.uint8)
    first[5:30, 10:50] = 200
    item.set_mask(first.copy())
    assert len(tinted) == 1

    coming = np.zeros((40, 60), dtype=np.uint8)
    coming[:, 50:] = 255
    item.keep(mask_overlay.tinted_layer(coming, item.tints))  # as made in a worker thread
    tinted.clear()
    item.set_mask(coming.copy())  # the document's own copy of it
    assert tinted == []
    np.testing.assert_array_equal(alpha(shown(item)), coming.astype(np.uint32) * SHOWN_ALPHA // 255)

    item.set_mask(first.copy())  # undo: the last mask comes back
    assert tinted == []
    np.testing.assert_array_equal(alpha(shown(item)), first.astype(np.uint32) * SHOWN_ALPHA // 255)
    live = item._mask
    live[0:2, 0:2] = 255  # a stroke on it afterwards reaches the layer as before
    item.update_region((0, 0, 2, 2))
    assert alpha(shown(item))[1, 1] == SHOWN_ALPHA and tinted

    item.keep(mask_overlay.tinted_layer(coming, item.tints))
    tinted.clear()
    other = coming.copy()
    other[20, 55] = 0  # other pixels in the same box
    item.set_mask(other)
    assert len(tinted) == 1 and alpha(shown(item))[20, 55] == 0
    item.keep(mask_overlay.tinted_layer(coming, item.tints))
    item.set_style("#00ff00", 0.8)  # other tints
    tinted.clear()
    item.set_mask(coming.copy())
    assert len(tinted) == 1 and shown(item)[0, 55] == 0xCC00CC00


def test_a_change_of_most_of_the_mask_in_place_swaps_in_a_kept_layer_and_keeps_the_one_it_replaces(
        qapp, monkeypatch) -> None:  # noqa: ANN001
    """Invert, clear and grow change the document's mask in place: a layer made ahead for the new mask is shown
    as it is, the one it replaces is kept (with a copy of its mask), so undo and redo swap them back and forth,
    and an empty mask drops its layer. Only a kept layer with exactly the mask's pixels and tints is taken."""
    from studio.ui import mask_overlay

    tinted: list[tuple[int, ...]] = []
    real_tint = mask_overlay._tint
    monkeypatch.setattr(mask_overlay, "_tint", lambda pixels, mask, tints: tinted.append(mask.shape)
                        or real_tint(pixels, mask, tints))
    item = MaskOverlayItem()
    live = new_mask(60, 40)  # the document's mask, edited in place
    item.set_mask(live)
    live[5:30, 10:50] = 200  # a stroke
    item.update_region((10, 5, 50, 30))
    painted = live.copy()

    def becomes(mask: np.ndarray) -> None:  # as Document.apply_mask_change / undo / redo edit it
        live[...] = mask
        item.update_region((0, 0, 60, 40))

    def expected(mask: np.ndarray) -> np.ndarray:
        return mask.astype(np.uint32) * SHOWN_ALPHA // 255

    inverted = 255 - painted
    item.keep(mask_overlay.tinted_layer(inverted, item.tints), painted.copy())  # as made in a worker thread
    tinted.clear()
    becomes(inverted)
    assert tinted == []
    np.testing.assert_array_equal(alpha(shown(item)), expected(inverted))
    for mask in (painted, inverted, painted):  # undo, redo, undo
        becomes(mask)
        assert tinted == []
        np.testing.assert_array_equal(alpha(shown(item)), expected(mask))

    becomes(np.zeros_like(painted))  # cleared: no layer at all
    assert item._image.isNull() and tinted == []
    becomes(painted)  # its undo
    assert tinted == [] and not item._image.isNull()
    np.testing.assert_array_equal(alpha(shown(item)), expected(painted))

    almost = painted.copy()
    almost[39, 59] = 9  # one pixel off what any kept layer shows: tinted, not swapped
    becomes(almost)
    assert tinted and alpha(shown(item))[39, 59] == 9 * SHOWN_ALPHA // 255
    tinted.clear()
    live[0:2, 0:2] = 255  # a small edit is tinted in its box as ever
    item.update_region((0, 0, 2, 2))
    assert tinted == [(2, 2)]


def test_a_wide_box_with_a_few_masked_pixels_is_tinted_exactly(qapp) -> None:  # noqa: ANN001
    """Cleared to the tint of nothing, then looked up only around its masked pixels: as every pixel looked up."""
    item = MaskOverlayItem()
    live = new_mask(80, 60)
    item.set_mask(live)
    live[...] = 255  # a whole-mask change to cover the layer over all of it
    item.update_region((0, 0, 80, 60))
    live[...] = 0
    live[40:44, 10:13] = (90, 255, 7)  # a dab of three values, far inside the box
    item.update_region((0, 0, 80, 60))
    np.testing.assert_array_equal(alpha(shown(item)), live.astype(np.uint32) * SHOWN_ALPHA // 255)
    assert shown(item)[0, 0] == 0 and (shown(item)[live > 0] != 0).all()


def test_a_whole_change_back_to_a_few_masked_pixels_gets_a_layer_over_them_alone(qapp, monkeypatch) -> None:  # noqa: ANN001
    """Undoing a clear, when no layer was kept for the brush dab before it: a new layer over the dab's box (at
    4096x4096 a whole layer cost 33 ms to allocate and 70 ms to tint); an edit elsewhere widens it as ever."""
    item = MaskOverlayItem()
    live = new_mask(200, 150)
    item.set_mask(live)
    live[...] = 255
    item.update_region((0, 0, 200, 150))
    live[...] = 0
    live[100:110, 50:70] = 255  # back to a dab (the whole-mask state before it was not kept)
    item.update_region((0, 0, 200, 150))
    assert item._layer_box == (50, 100, 70, 110)
    np.testing.assert_array_equal(alpha(shown(item)), live.astype(np.uint32) * SHOWN_ALPHA // 255)
    live[5:8, 5:8] = 255  # a stroke outside the dab's box
    item.update_region((5, 5, 8, 8))
    assert item._layer_box == (0, 0, 200, 150)
    np.testing.assert_array_equal(alpha(shown(item)), live.astype(np.uint32) * SHOWN_ALPHA // 255)


def test_a_history_jump_over_a_stroke_and_a_new_size_shows_the_mask_there_is(qtbot, window) -> None:  # noqa: ANN001
    """A jump back over a stroke and an extended canvas undoes the stroke in the mask on screen (held, unseen)
    before that mask is replaced; the layer that showed the stroke must not be kept as that mask's layer, or a
    jump forward again shows the stroke where the mask has none."""
    from PIL import Image

    from studio.core.mask import fill_rect

    doc, overlay = window.document, window.canvas.overlay
    doc.set_image(Image.new("RGB", (64, 48), (90, 120, 200)), "Open")
    doc.replace_all("Extend canvas", Image.new("RGB", (80, 48), (90, 120, 200)), np.zeros((48, 80), np.uint8))
    doc.begin_stroke("Paint mask")
    doc.stroke(lambda mask: fill_rect(mask, (10, 10, 30, 30)))
    doc.end_stroke()
    for position in (1, 2, 3, 2, 1, 2):
        window._go_to_history(position)
        np.testing.assert_array_equal(shown(overlay), overlay.tints[doc.mask], err_msg=f"at step {position}")


def test_undo_and_redo_of_whole_mask_changes_swap_layers_back_without_comparing_masks(qtbot, window,  # noqa: ANN001
                                                                                      monkeypatch) -> None:
    """Extend and invert, undone and redone: the document says which unedited array the mask now equals (its
    history's record), and the overlay finds the layer kept for that very array; comparing a 4096x4096 mask with
    each kept layer's took the window 5-10 ms per undo."""
    from PIL import Image

    from studio.core.mask import fill_rect
    from studio.ui import mask_overlay

    doc, overlay, actions = window.document, window.canvas.overlay, window.actions_
    doc.set_image(Image.new("RGB", (64, 48), (90, 120, 200)), "Open")
    doc.edit_mask("Paint mask", lambda mask: fill_rect(mask, (5, 5, 30, 20)))
    compared: list[int] = []
    real_same = mask_overlay._same_mask
    monkeypatch.setattr(mask_overlay, "_same_mask", lambda *a: compared.append(1) or real_same(*a))

    def walk(*moves: str) -> None:
        for move in moves:
            getattr(doc, move)()
            np.testing.assert_array_equal(shown(overlay), overlay.tints[doc.mask],
                                          err_msg=f"{move} to {doc.history_position}")

    qtbot.waitUntil(actions.extend_canvas(0, 0, 16, 0, fill=False).done, timeout=5000)
    walk("undo", "redo", "undo", "redo")
    for _ in range(2):  # each changes every pixel
        qtbot.waitUntil(actions.invert().done, timeout=5000)
    assert doc.history_labels() == ["Open", "Paint mask", "Extend canvas to 80×48", "Invert mask", "Invert mask"]
    walk("undo", "redo", "undo", "undo", "redo", "redo", "undo", "redo")
    assert compared == []


def test_strokes_after_an_undo_of_a_whole_mask_change_show_on_the_mask_copied_for_them(qtbot, window) -> None:  # noqa: ANN001
    """An undo or redo of invert or of an extended canvas takes the history's record back as the mask (copying 16 MB
    held the window's thread 3-50 ms at 4096x4096); the first stroke after it goes into a copy, and the overlay shows
    the stroke from that copy, not from the record."""
    from PIL import Image

    from studio.core.mask import fill_rect

    doc, overlay, actions = window.document, window.canvas.overlay, window.actions_
    doc.set_image(Image.new("RGB", (64, 48), (90, 120, 200)), "Open")
    doc.edit_mask("Paint mask", lambda mask: fill_rect(mask, (5, 5, 30, 20)))
    qtbot.waitUntil(actions.extend_canvas(0, 0, 16, 0, fill=False).done, timeout=5000)
    qtbot.waitUntil(actions.invert().done, timeout=5000)
    # Back over the invert; back over the extend and forward again; back over it: a stroke after each, undone.
    for moves, spot in ((["undo"], (40, 10, 44, 14)), (["undo", "redo"], (70, 40, 74, 44)),
                        (["undo"], (8, 30, 12, 34))):
        for move in moves:
            getattr(doc, move)()
        assert not doc.mask.flags.writeable  # the record itself
        doc.begin_stroke("Paint mask")
        doc.stroke(lambda mask: fill_rect(mask, spot))
        doc.end_stroke()
        assert doc.mask[spot[1], spot[0]] == 255
        np.testing.assert_array_equal(shown(overlay), overlay.tints[doc.mask], err_msg=f"a stroke after {moves}")
        doc.undo()
        np.testing.assert_array_equal(shown(overlay), overlay.tints[doc.mask], err_msg="that stroke undone")
