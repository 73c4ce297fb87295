"""The seed box: a seed pasted from another program's picture reaches the job as written, or is refused in words."""

from __future__ import annotations

from PySide6.QtCore import Qt
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
