"""A question or warning asked in the middle of asynchronous work must not stop the window's other work.

Under qasync, a modal dialog's own event loop run inside an asyncio task left every other task unable to wake
up, for good: a warning about a bad file, shown while a job ran, made the window stop hearing the engine.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

WAIT_MS = 60_000


def close_the_dialog_soon(answers: list[str], answer=None) -> None:  # noqa: ANN001
    """Close the next modal dialog after 0.3 s (a person reading it): with a button of it, or as Escape does."""
    def close() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(50, close)
            return
        answers.append(dialog.windowTitle())
        if answer is None:
            dialog.reject()
        else:
            dialog.button(answer).click()
    QTimer.singleShot(300, close)


def test_a_warning_shown_during_a_job_leaves_the_window_hearing_the_engine(qtbot, window, tmp_path: Path):  # noqa: ANN001
    window.prompt_panel.steps_spin.setValue(30)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("running")), timeout=WAIT_MS)
    bad = tmp_path / "not-a-picture.png"
    bad.write_text("hello")
    answers: list[str] = []
    close_the_dialog_soon(answers)
    opened = window.actions_.run(window.actions_.open_path(bad))  # warns, in a dialog, from a task
    qtbot.waitUntil(opened.done, timeout=WAIT_MS)
    assert answers == ["Open Image"] and opened.result() is False
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert window.document.image is not None  # the result reached the canvas
    assert not window.jobs.task.done()


def test_other_tasks_run_while_a_modal_dialog_waits_and_its_answer_or_error_comes_back(qtbot, qt_loop):  # noqa: ANN001
    import asyncio

    from PySide6.QtWidgets import QMessageBox, QWidget

    from studio.ui.modal import modal

    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks.append(1)

    async def ask() -> tuple[object, int]:
        answers: list[str] = []
        close_the_dialog_soon(answers, QMessageBox.StandardButton.Yes)
        before = len(ticks)
        answer = await modal(lambda: QMessageBox.question(parent, "A question", "Go on?"))
        return answer, len(ticks) - before

    async def fails() -> None:
        await modal(lambda: 1 / 0)

    ticking = asyncio.ensure_future(ticker())
    asked, failed = asyncio.ensure_future(ask()), asyncio.ensure_future(fails())
    qtbot.waitUntil(lambda: asked.done() and failed.done(), timeout=10_000)
    answer, meanwhile = asked.result()
    assert answer == QMessageBox.StandardButton.Yes and meanwhile >= 5  # the other task went on
    assert isinstance(failed.exception(), ZeroDivisionError)
    count = len(ticks)
    qtbot.waitUntil(lambda: len(ticks) > count + 3, timeout=2000)  # and goes on still
    ticking.cancel()


MODAL_CLASSES = {"QMessageBox", "QInputDialog", "QFileDialog", "QColorDialog", "QFontDialog"}
MODAL_METHODS = {"exec", "confirm", "ask_convert"}  # a dialog's own loop, and the dialogs' injectable questions


def modal_calls_in_tasks(source: str) -> list[int]:
    """Lines where an ``async def`` opens a modal dialog itself rather than through ``modal(lambda: ...)``."""
    import ast

    found: list[int] = []

    def visit(node: ast.AST, in_task: bool, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            task, later = in_task, deferred
            if isinstance(child, ast.AsyncFunctionDef):
                task, later = True, False
            elif isinstance(child, ast.FunctionDef):
                task = False  # runs wherever it is called
            elif isinstance(child, ast.Lambda):
                later = True
            if task and not later and isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                owner = child.func.value
                if (isinstance(owner, ast.Name) and owner.id in MODAL_CLASSES) or child.func.attr in MODAL_METHODS:
                    found.append(child.lineno)
            visit(child, task, later)

    visit(ast.parse(source), False, False)
    return found


def test_no_task_in_the_window_opens_a_modal_dialog_itself():
    studio_ui = Path(__file__).resolve().parents[2] / "studio" / "ui"
    offending = {path.name: lines for path in sorted(studio_ui.glob("*.py"))
                 if (lines := modal_calls_in_tasks(path.read_text(encoding="utf-8")))}
    assert offending == {}, "open these through studio.ui.modal.modal(lambda: ...)"
    bad = "async def f(self):\n    await x()\n    QMessageBox.warning(None, 't', 'x')\n    self.confirm('a', 'b')\n"
    good = "async def f(self):\n    await modal(lambda: QMessageBox.warning(None, 't', 'x'))\n" \
           "def g(self):\n    dialog.exec()\n"
    assert modal_calls_in_tasks(bad) == [3, 4] and modal_calls_in_tasks(good) == []
