"""Window titles follow one rule, the menus' Title Case ("Model Library", "Extend Canvas"): a tester found
"Delete picture", "Restore your work?" and a "Models folder" file dialog beside "Delete Job"-style menus."""

from __future__ import annotations

import ast
from pathlib import Path

from PySide6.QtCore import Qt

import studio.ui

UI = Path(studio.ui.__file__).parent
SMALL_WORDS = {"a", "an", "the", "and", "or", "nor", "but", "for", "from", "to", "in", "of", "on", "at", "by", "as",
               "with", "into", "per", "vs"}
# Calls whose argument at this index is a window title.
TITLE_ARGUMENT = {"setWindowTitle": 0, "question": 1, "warning": 1, "information": 1, "critical": 1, "about": 1,
                  "getOpenFileName": 1, "getSaveFileName": 1, "getExistingDirectory": 1, "getText": 1,
                  "getItem": 1, "confirmed": 0, "confirm": 0, "_warn": 0, "_agreed": 0, "ask": 1,
                  "ask_to_delete": 1, "QMessageBox": 1}


def _words_not_in_title_case(text: str) -> list[str]:
    """A title's first word is capitalised whatever it is; a suffix (" — in the Chain") has no first word."""
    first = 0 if text[:1].isalnum() else -1
    words = text.replace("—", " ").split()
    return [word for index, word in enumerate(words)
            if word[0].isalpha() and word[0].islower() and (index == first or word.lower() not in SMALL_WORDS)]


def _titles(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        index = TITLE_ARGUMENT.get(name)
        if index is None or len(node.args) <= index:
            continue
        title = node.args[index]
        parts = title.values if isinstance(title, ast.JoinedStr) else [title]
        text = "".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
        if text.strip():
            found.append((node.lineno, text))
    return found


def test_every_window_title_in_the_ui_is_in_title_case() -> None:
    wrong = [f"{path.name}:{line}: {title!r}" for path in sorted(UI.glob("*.py"))
             for line, title in _titles(ast.parse(path.read_text(encoding="utf-8")))
             if _words_not_in_title_case(title)]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_the_titles_it_is_meant_to_judge() -> None:
    source = ('QMessageBox.question(self, "Delete picture", "x")\n'
              'QFileDialog.getExistingDirectory(self.window, "Models Folder", "")\n'
              'QInputDialog.getText(self.window, f"Save {kind.title()}", "Name:")\n')
    titles = _titles(ast.parse(source))
    assert titles == [(1, "Delete picture"), (2, "Models Folder"), (3, "Save ")]
    assert [_words_not_in_title_case(t) for _, t in titles] == [["picture"], [], []]
    assert _words_not_in_title_case("an Upscale") == ["an"] and not _words_not_in_title_case(" — in the Chain")


# Words a person painting pictures should not need: they may stay in tooltips, which say how a thing works.
JARGON = ("CUDA", "UNet", "bfloat16", "float32", "VAE", "unpickled", "spandrel", "torch", "diffusers")


def _jargon(text: str) -> list[str]:
    return [word for word in JARGON if word.lower() in text.lower()]


def _intro(dialog) -> str:  # noqa: ANN001
    from PySide6.QtWidgets import QLabel

    return next(label for label in dialog.findChildren(QLabel) if label.objectName() == "hintLabel").text()


def test_the_gpu_menu_names_its_speeds_alike_without_jargon_and_explains_them_in_tooltips() -> None:
    from studio.ui.gpu_menu import CHOICES, CPU_SAID, GPU_SAID

    speeds = [c for c in CHOICES if c.setting == "speed"]
    shown = [c.text for c in speeds] + [c.cpu_text for c in speeds if c.cpu_text]
    assert [t for t in shown if _jargon(t) or not t.startswith("Speed: ")] == []
    assert [s for s in (*GPU_SAID.values(), *CPU_SAID.values()) if _jargon(s.split("(")[0])] == []
    fast = next(c for c in speeds if c.value == "fast")
    assert "CUDA graphs" in fast.tip and "bfloat16" in fast.cpu_tip  # the how, for those who want it


def test_the_upscale_filter_s_description_does_not_name_the_library_that_loads_models() -> None:
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS

    upscale = next(c for c in BUILTIN_CONTRIBUTIONS if c.id == "upscale")
    assert _jargon(upscale.description) == [] and "super-resolution model" in upscale.description


def test_the_model_library_and_models_in_memory_say_it_for_an_artist(qtbot, window, tmp_path):  # noqa: ANN001
    from studio.ui.models_dialog import ModelsDialog

    library = ModelsDialog(window.settings, tmp_path / "cache", [].append)
    qtbot.addWidget(library)
    assert _jargon(_intro(library)) == [] and "safetensors" in _intro(library)
    assert "unpickles" in next(c for c in library.findChildren(type(library.message))
                               if c.objectName() == "hintLabel").toolTip()
    window.memory.models_action.trigger()
    memory = window.memory.dialog
    assert _jargon(_intro(memory)) == [] and "Free them" in _intro(memory)
    assert "CUDA graphs" in next(c for c in memory.findChildren(type(memory.message))
                                 if c.objectName() == "hintLabel").toolTip()
    assert _jargon(memory.free_kept_button.toolTip()) == []


def test_a_task_dialog_s_remove_or_uninstall_question_names_its_action_and_cancels_by_default(qtbot) -> None:  # noqa: ANN001
    """"Remove Model", "Uninstall Plugin" and "Delete Unfinished Download" asked Yes/No; they ask with a button
    named for what it does, Cancel the default. Other questions keep Yes/No."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.ui.task_dialog import ask

    def answer(seen: list, press: str) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, lambda: answer(seen, press))  # the question is not up yet
            return
        seen.append(({b.text().replace("&", ""): box.buttonRole(b) for b in box.buttons()},
                     box.defaultButton().text().replace("&", "") if box.defaultButton() else None,
                     box.textFormat()))
        next((b for b in box.buttons() if b.text().replace("&", "") == press), box.buttons()[-1]).click()

    for title, action in (("Remove Model", "Remove"), ("Uninstall Plugin", "Uninstall"),
                          ("Delete Unfinished Download", "Delete"), ("Unlink Folder", "Unlink")):
        for press, said in (("Cancel", False), (action, True)):
            seen: list = []
            QTimer.singleShot(0, lambda: answer(seen, press))
            assert ask(None, title, "Remove <b>x</b>?", action) is said
            roles = {action: QMessageBox.ButtonRole.DestructiveRole, "Cancel": QMessageBox.ButtonRole.RejectRole}
            assert seen == [(roles, "Cancel", Qt.TextFormat.PlainText)], title
    seen = []
    QTimer.singleShot(0, lambda: answer(seen, "Yes"))
    assert ask(None, "Install Plugin", "Install it?") is True
    assert set(seen[0][0]) == {"Yes", "No"} and seen[0][1] == "No"
