"""The inpaint options: the hint and the Feather box say how far past the mask an inpaint changes pixels."""

from __future__ import annotations

from studio.core.mask import feather_reach
from studio.ui.inpaint_options import InpaintOptionsBox


def test_the_hint_says_how_far_past_the_mask_the_feather_blends(qtbot):  # noqa: ANN001
    """"Generate redraws the masked area and keeps the rest" was untrue at the default 8 px feather: pixels up to
    10 px outside a stroke changed. The hint and the box's tooltip say how far, and follow the box."""
    box = InpaintOptionsBox()
    qtbot.addWidget(box)
    assert box.feather_spin.value() == 8
    reach = feather_reach(8)
    assert reach >= 10
    assert f"blends it up to {reach} px beyond the mask" in box.hint.text()
    assert "keeps the rest." not in box.hint.text()
    assert box.feather_spin.toolTip().endswith(f"at 8 px they blend up to {reach} px beyond the mask.")
    box.feather_spin.setValue(16)
    assert f"up to {feather_reach(16)} px beyond the mask" in box.hint.text()
    box.feather_spin.setValue(0)
    assert box.hint.text().startswith("Generate redraws the masked area and keeps the rest (Feather 0: a hard edge).")
    assert "nothing outside the mask changes" in box.feather_spin.toolTip()
