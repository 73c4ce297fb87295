"""The seed box: a seed pasted from another program's picture reaches the job as written, or is refused in words."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QGuiApplication

from studio.core.requests import MAX_SEED


def _paste(qtbot, edit, text: str) -> None:  # noqa: ANN001
    edit.clear()
    edit.setFocus()
    QGuiApplication.clipboard().setText(text)
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def _submitted(window, monkeypatch) -> list:  # noqa: ANN001
    requests: list = []
    monkeypatch.setattr(window.submission, "submit", requests.append)
    return requests


def test_a_pasted_seed_reaches_the_request_exactly(qtbot, window, monkeypatch):  # noqa: ANN001
    panel = window.prompt_panel
    requests = _submitted(window, monkeypatch)
    for pasted, seed in ((str(MAX_SEED), MAX_SEED), ("4294967", 4294967), ("  Seed: 3141592653 ", 3141592653)):
        _paste(qtbot, panel.seed_edit, pasted)
        assert panel.seed_edit.text() == str(seed)
        assert not panel.sampling.seed_error.isVisible()
        window.generate()
        assert requests[-1].seed == seed
    QGuiApplication.clipboard().clear()


def test_a_64_bit_seed_stays_as_pasted_and_is_refused_in_words(qtbot, window, monkeypatch):  # noqa: ANN001
    panel = window.prompt_panel
    requests = _submitted(window, monkeypatch)
    for pasted in (str(2**64 - 1), str(MAX_SEED + 1)):
        _paste(qtbot, panel.seed_edit, pasted)
        assert panel.seed_edit.text() == pasted  # never cut, and never emptied into a random seed
        assert panel.sampling.seed_error.isVisible()
        assert panel.sampling.seed_error.text().startswith(f"Seed {pasted} is more than {MAX_SEED}")
        window.generate()
        assert requests == []
    panel.seed_edit.setText("12")
    assert not panel.sampling.seed_error.isVisible()
    QGuiApplication.clipboard().clear()


def test_a_seed_of_thousands_of_digits_is_refused_in_words_not_a_crash(qtbot, window, monkeypatch):  # noqa: ANN001
    # int() of over 4300 digits raises ValueError; raised in Qt's validator call, it killed Studio.
    panel = window.prompt_panel
    requests = _submitted(window, monkeypatch)
    _paste(qtbot, panel.seed_edit, "9" * 4301)
    assert len(panel.seed_edit.text()) == 4301
    assert panel.sampling.seed_error.isVisible()
    assert f"is more than {MAX_SEED}" in panel.sampling.seed_error.text()
    assert len(panel.sampling.seed_error.text()) < 300
    window.generate()
    assert requests == []
    assert f"is more than {MAX_SEED}" in panel.error_label.text()
    QGuiApplication.clipboard().clear()


def test_the_seed_parameter_of_a_plugin_refuses_thousands_of_digits(qtbot):  # noqa: ANN001
    from studio.ui.parameter_form import _SeedValidator
    from PySide6.QtGui import QValidator
    assert _SeedValidator().validate("9" * 5000, 0)[0] == QValidator.State.Invalid


def test_a_paste_is_taken_or_refused_in_words_never_ignored(qtbot, window):  # noqa: ANN001
    panel = window.prompt_panel
    for pasted, seed in (("Seed: 42, Size: 512x512", "42"), ("1,234", "1234"), ("４２", "42"), ("seed=77", "77")):
        panel.seed_edit.setText("5")
        _paste_over(qtbot, panel.seed_edit, pasted)
        assert panel.seed_edit.text() == seed, pasted
        assert not panel.sampling.seed_error.isVisible()
    panel.seed_edit.setText("5")
    _paste_over(qtbot, panel.seed_edit, "-1")  # AUTOMATIC1111's random seed
    assert panel.seed_edit.text() == ""
    assert "random" in window.status.message_label.text()
    panel.seed_edit.setText("5")  # a seed again: the note about -1 went (it stayed through every later paste)
    assert "random" not in window.status.message_label.text()
    _paste_over(qtbot, panel.seed_edit, "a cat")
    assert panel.seed_edit.text() == "5"
    assert panel.sampling.seed_error.isVisible()
    assert panel.sampling.seed_error.text().startswith("\u201ca cat\u201d is not a seed")
    QGuiApplication.clipboard().clear()


def _paste_over(qtbot, edit, text: str) -> None:  # noqa: ANN001
    edit.setFocus()
    edit.selectAll()
    QGuiApplication.clipboard().setText(text)
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def test_typing_seed_colon_and_a_number_says_no_refusal_on_the_way(qtbot, window, monkeypatch):  # noqa: ANN001
    panel = window.prompt_panel
    requests = _submitted(window, monkeypatch)
    refusals: list[str] = []
    panel.sampling.seed_validator.refused.connect(refusals.append)
    panel.seed_edit.clear()
    panel.seed_edit.setFocus()
    shown: list[str] = []
    for letter in "Seed: 42":
        qtbot.keyClicks(panel.seed_edit, letter)
        if panel.sampling.seed_error.isVisible():
            shown.append(f"{panel.seed_edit.text()!r}: {panel.sampling.seed_error.text()}")
    assert shown == [] and refusals == []
    assert panel.seed_edit.text() == "42"
    window.generate()
    assert requests[-1].seed == 42

    panel.seed_edit.clear()
    qtbot.keyClicks(panel.seed_edit, "Seed:")  # left half typed: said on Generate, and no job
    assert panel.seed_edit.text() == "Seed:" and not panel.sampling.seed_error.isVisible()
    window.generate()
    assert len(requests) == 1
    assert panel.error_label.text().startswith("\u201cSeed:\u201d is not a seed")
    panel.steps_spin.setFocus()  # and when the person leaves the box
    qtbot.waitUntil(lambda: not panel.seed_edit.hasFocus())
    assert panel.sampling.seed_error.isVisible()
    assert panel.sampling.seed_error.text().startswith("\u201cSeed:\u201d is not a seed")

    panel.seed_edit.clear()
    qtbot.keyClicks(panel.seed_edit, "Sx")  # can no longer become a seed: said at once, and kept out
    assert panel.seed_edit.text() == "S"
    assert refusals and refusals[-1].startswith("\u201cSx\u201d is not a seed")
    assert panel.sampling.seed_error.isVisible()


def _drawn_box(button) -> QRect:  # noqa: ANN001
    """Where the button draws anything (its icon, text, chevrons) over its background, in its own pixels."""
    image = button.grab().toImage()
    background = image.pixelColor(1, 1)
    box = QRect()
    for y in range(image.height()):
        for x in range(image.width()):
            colour = image.pixelColor(x, y)
            if abs(colour.lightness() - background.lightness()) > 40:
                box = box.united(QRect(x, y, 1, 1))
    return box


def test_menu_buttons_show_one_chevron_centred_at_their_right(qtbot, qt_loop):  # noqa: ANN001
    """The size presets button drew its chevron icon and a second, small chevron under it; Add LoRA, Styles and
    Presets hung their chevron below the text at the bottom right."""
    from studio.ui.generation_controls import SizeBox
    from studio.ui.lora_box import LoraBox
    from studio.ui.styles_menu import PresetsButton, StylesButton

    size_box, lora_box = SizeBox(), LoraBox()
    for widget in (size_box, lora_box):
        qtbot.addWidget(widget)
        widget.show()
    qtbot.waitExposed(lora_box)
    presets = size_box.presets
    drawn = _drawn_box(presets)  # the icon alone: centred both ways
    assert abs(drawn.center().x() - presets.rect().center().x()) <= 2, drawn
    assert abs(drawn.center().y() - presets.rect().center().y()) <= 2, drawn
    for button in (lora_box.add_button, StylesButton(), PresetsButton()):
        qtbot.addWidget(button)
        button.show()
        qtbot.waitExposed(button)
        chevron = _drawn_box(button).intersected(QRect(button.width() - 16, 0, 16, button.height()))
        assert not chevron.isEmpty(), button.text()
        assert chevron.right() < button.width() - 1  # inside the button
        assert abs(chevron.center().y() - button.rect().center().y()) <= 2, (button.text(), chevron)
