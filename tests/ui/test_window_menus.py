"""The menu bar read from the keyboard: every menu and every entry has an Alt+letter, none shared."""

from __future__ import annotations

from collections import Counter

from PySide6.QtGui import QAction

from studio.ui.mnemonics import mnemonic, plain, with_mnemonic


def _entries(menu_action: QAction) -> list[QAction]:
    return [a for a in menu_action.menu().actions() if not a.isSeparator() and a.isVisible()]


def test_every_menu_and_entry_has_its_own_alt_letter(window):  # noqa: ANN001
    """Alt+I opened Image or Filters, File's O and Settings' M were each two entries', and the filters, the mask's
    Show/Grow/Shrink and the View menu's panels had none, so they could not be reached from the keyboard."""
    menus = [a for a in window.menuBar().actions() if a.menu() is not None]
    titles = [plain(a.text()) for a in menus]
    assert {"File", "Edit", "Image", "Filters", "Mask", "Generate", "View", "Settings", "Help"} <= set(titles)
    letters = [mnemonic(a.text()) for a in menus]
    assert None not in letters, titles
    assert [letter for letter, n in Counter(letters).items() if n > 1] == [], titles
    for menu in menus:
        entries = _entries(menu)
        assert entries, plain(menu.text())
        missing = [a.text() for a in entries if mnemonic(a.text()) is None]
        assert missing == [], f"{plain(menu.text())}: {missing}"
        shared = [letter for letter, n in Counter(mnemonic(a.text()) for a in entries).items() if n > 1]
        assert shared == [], f"{plain(menu.text())}: {[a.text() for a in entries]}"
    filters = next(a for a in menus if plain(a.text()) == "Filters")
    assert "Colour Transfer…" in [plain(a.text()) for a in _entries(filters)]
    view = next(a for a in menus if plain(a.text()) == "View")
    assert {"Generate", "Queue", "Undo History", "Gallery"} <= {plain(a.text()) for a in _entries(view)}


def test_a_title_gets_the_first_free_word_initial_and_keeps_its_ampersand():
    taken = {"c"}
    assert with_mnemonic("Colour Transfer…", taken) == "Colour &Transfer…" and taken == {"c", "t"}
    assert with_mnemonic("Black & White", taken) == "&Black && White"
    assert with_mnemonic("Tc", taken) == "Tc"  # every letter taken: none
    assert mnemonic("Black && &White") == "w" and mnemonic("Black && White") is None
    assert plain("&Black && White") == "Black & White"


def test_no_two_actions_share_a_shortcut(window):  # noqa: ANN001
    """A shortcut two actions claim fires neither (Qt calls it ambiguous)."""
    from PySide6.QtCore import Qt

    window_wide = (Qt.ShortcutContext.WindowShortcut, Qt.ShortcutContext.ApplicationShortcut)
    owners: dict[str, list[str]] = {}
    for action in {*window.findChildren(QAction), *(a for m in window.menuBar().actions() if m.menu()
                                                      for a in m.menu().actions())}:
        if action.shortcutContext() in window_wide:
            for sequence in action.shortcuts():
                owners.setdefault(sequence.toString(), []).append(plain(action.text()))
    assert "Ctrl+F" in owners and "Shift+Esc" in owners
    assert {key: names for key, names in owners.items() if len(names) > 1} == {}
