"""The Hires fix section in the window: a picture made small and redrawn larger, kept in the settings, presets,
the gallery and pictures dropped from other tools."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt

from studio.core.hires import HiresFix
from studio.core.images import read_recipe
from studio.core.model_library import LibraryItem

WAIT_MS = 60_000


def _upscaler(folder: Path, name: str, linked: bool = False) -> LibraryItem:
    return LibraryItem(name, folder / f"{name}.safetensors", "upscaler", "", "Upscaler (ESRGAN)", 1, "models folder",
                       linked=linked)


def test_generate_with_hires_fix_makes_the_larger_picture_and_records_it(qtbot, window, settings):  # noqa: ANN001
    panel = window.prompt_panel
    box = panel.hires_box
    panel.prompt_edit.setPlainText("a lighthouse at dusk")
    panel.seed_edit.setText("5")
    assert not box.scale_spin.isEnabled()  # off by default: its fields wait greyed
    box.enabled_check.setChecked(True)
    box.scale_spin.setValue(1.5)
    box.steps_spin.setValue(4)
    box.strength_spin.setValue(0.5)
    assert box.size_label.text() == "96 × 96"  # the 64x64 of the Size fields, 1.5 times
    previews: list[tuple[int, int]] = []
    show = window.canvas.show_preview
    window.canvas.show_preview = lambda image, w, h, box=None: (previews.append((w, h)), show(image, w, h, box))
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert window.canvas.image().size == (96, 96)
    assert previews and set(previews) == {(96, 96)}  # both passes preview over the final picture's place
    saved = sorted(settings.outputs_dir.rglob("*.png"))
    recipe = read_recipe(saved[0])
    assert (recipe.width, recipe.height, recipe.hires) == (64, 64, HiresFix(1.5, 4, 0.5))
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=5000)
    tip = window.gallery.model.data(window.gallery.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "Hires fix 1.5× with Lanczos → 96×96" in tip
    # Load parameters of a picture made without it turns it off; of this one turns it back on.
    box.enabled_check.setChecked(False)
    window.gallery.select_row(0)
    window.gallery.load_button.click()
    qtbot.waitUntil(lambda: box.enabled_check.isChecked(), timeout=5000)
    assert box.values() == HiresFix(1.5, 4, 0.5)


def test_hires_fix_does_not_apply_to_jobs_from_the_canvas(qtbot, window):  # noqa: ANN001
    panel = window.prompt_panel
    panel.hires_box.enabled_check.setChecked(True)
    assert panel.build_request(None).hires == HiresFix()
    panel.use_canvas_check.setChecked(True)
    assert not panel.hires_box.enabled_check.isEnabled() and not panel.hires_box.scale_spin.isEnabled()
    assert panel.build_request(Image.new("RGB", (64, 64))).hires is None
    panel.use_canvas_check.setChecked(False)
    panel.set_mask_active(True)
    assert panel.hires_box.hires() is None
    panel.set_mask_active(False)
    assert panel.hires_box.hires() == HiresFix()


def test_a_final_size_over_studios_limit_is_shown_as_an_error(qtbot, window):  # noqa: ANN001
    panel = window.prompt_panel
    panel.hires_box.enabled_check.setChecked(True)
    panel.set_size(1536, 1024)
    panel.hires_box.scale_spin.setValue(3.0)
    assert panel.hires_box.size_label.text() == "4608 × 3072"
    assert panel.hires_box.size_label.property("error") is True
    panel.hires_box.scale_spin.setValue(2.0)
    assert panel.hires_box.size_label.property("error") is False


def test_the_settings_and_chosen_upscaler_come_back_at_the_next_start(qtbot, window, tmp_path):  # noqa: ANN001
    panel = window.prompt_panel
    folder = tmp_path / "models" / "upscalers"
    panel.hires_box.set_library([_upscaler(folder, "4x-UltraSharp"), _upscaler(tmp_path / "a1111", "Remacri", True)])
    combo = panel.hires_box.upscaler_combo
    assert [combo.itemData(i) for i in range(combo.count())] == [
        "Lanczos", "Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)",
        "Latent (nearest)", "Latent (nearest-exact)", "4x-UltraSharp", str(tmp_path / "a1111" / "Remacri.safetensors")]
    panel.hires_box.set_values(HiresFix(2.5, 12, 0.4, "4x-UltraSharp"))
    saved = panel.defaults()
    assert (saved.hires, saved.hires_scale, saved.hires_steps, saved.hires_strength, saved.hires_upscaler) == \
        (True, 2.5, 12, 0.4, "4x-UltraSharp")
    # Another tool's upscaler Studio does not have becomes Lanczos, and the person is told.
    assert panel.fill(hires=HiresFix(2.0, upscaler="R-ESRGAN 4x+")) == [
        "No upscaler called 'R-ESRGAN 4x+' is installed; the hires fix uses Lanczos."]
    assert panel.hires_box.hires().upscaler == "Lanczos"
    panel.hires_box.set_values(HiresFix(2.5, 12, 0.4, "4x-UltraSharp"))
    saved = panel.defaults()
    # At a start the settings come before the library's scan: the upscaler waits for it instead of being lost.
    from studio.ui.prompt_panel import PromptPanel

    fresh = PromptPanel()
    qtbot.addWidget(fresh)
    fresh.load_defaults(saved)
    assert fresh.hires_box.upscaler_combo.currentText() == "Lanczos"
    fresh.hires_box.set_library([_upscaler(folder, "4x-UltraSharp")])
    assert fresh.hires_box.hires() == HiresFix(2.5, 12, 0.4, "4x-UltraSharp")


def test_a_preset_keeps_the_hires_fix(qtbot, window):  # noqa: ANN001
    panel = window.prompt_panel
    panel.hires_box.set_values(HiresFix(1.75, 6, 0.3))
    window.history_actions.add_preset("big")
    panel.hires_box.enabled_check.setChecked(False)
    panel.hires_box.scale_spin.setValue(3.0)
    window.history_actions.apply_preset(next(p for p in window.settings.presets if p.name == "big"))
    assert panel.hires_box.hires() == HiresFix(1.75, 6, 0.3)


def test_an_upscaler_missing_for_now_stays_chosen_and_the_tip_comes_back(qtbot, window, tmp_path):  # noqa: ANN001
    """A linked drive unplugged for one session turned the saved upscaler into Lanczos for good."""
    from studio.ui.hires_box import ENABLE_TIP, ONLY_NEW

    panel = window.prompt_panel
    panel.hires_box.set_values(HiresFix(2.0, upscaler="4x-UltraSharp"))  # not in the library this session
    panel.hires_box.set_library([])
    assert panel.hires_box.hires().upscaler == "Lanczos"  # what runs is what is shown
    assert panel.defaults().hires_upscaler == "4x-UltraSharp"  # what is kept is what was chosen
    panel.use_canvas_check.setChecked(True)
    assert panel.hires_box.enabled_check.toolTip() == ONLY_NEW
    panel.use_canvas_check.setChecked(False)
    assert panel.hires_box.enabled_check.toolTip() == ENABLE_TIP


def test_a_switched_off_hires_fix_shows_its_spin_boxes_without_an_empty_arrow_column(qtbot, qt_loop):  # noqa: ANN001
    """Disabled spin boxes kept their step buttons' column and divider with no arrows in it: it looked broken."""
    from PySide6.QtWidgets import QStyle, QStyleOptionSpinBox

    from studio.ui.hires_box import HiresBox

    box = HiresBox()
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)

    def arrow_column(spin) -> int:  # noqa: ANN001
        option = QStyleOptionSpinBox()
        spin.initStyleOption(option)
        return spin.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, option,
                                           QStyle.SubControl.SC_SpinBoxUp, spin).width()

    box.enabled_check.setChecked(False)
    assert not box.steps_spin.isEnabled()
    assert arrow_column(box.scale_spin) == 0 and arrow_column(box.steps_spin) == 0
    box.enabled_check.setChecked(True)
    assert arrow_column(box.scale_spin) > 0 and arrow_column(box.steps_spin) > 0
