"""The Speed menu's labels as a sentence prints them: the engine's reason names the item the window shows."""

from studio.core.speed_labels import SPEED_COMPILED, SPEED_FAST, SPEED_STANDARD, menu_words


def test_menu_words_drop_the_mnemonic_and_keep_a_doubled_ampersand():
    assert [menu_words(label) for label in (SPEED_FAST, SPEED_STANDARD, SPEED_COMPILED)] == [
        "Speed: Fast", "Speed: Standard", "Speed: Fastest (Compiled)"]
    assert menu_words("Save && &Quit") == "Save & Quit"
