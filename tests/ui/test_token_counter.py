"""The token counter beside a prompt box counts in a thread of its own; a count that ends after its counter was
deleted (the window closed meanwhile) is dropped, never delivered to a deleted widget (that crashed the process)."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QPlainTextEdit

from studio.ui import token_counter
from studio.ui.token_counter import TokenCounter


def test_counts_arrive_on_the_window_thread_and_a_count_after_the_counter_is_gone_is_dropped(  # noqa: ANN001
        qtbot, monkeypatch):
    release, threads, real = threading.Event(), [], token_counter.count_tokens

    def slow_count(text: str) -> tuple[int, int]:
        threads.append(threading.current_thread())
        release.wait(5)
        return real(text)

    monkeypatch.setattr(token_counter, "count_tokens", slow_count)
    failures: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    edit = QPlainTextEdit()
    qtbot.addWidget(edit)
    counter = TokenCounter(edit)
    edit.setPlainText("a cat")
    qtbot.waitUntil(lambda: len(threads) == 1, timeout=5000)
    release.set()
    qtbot.waitUntil(lambda: counter.text() == "2/75", timeout=5000)
    assert threads[0] is not threading.main_thread()

    release.clear()
    edit.setPlainText("a cat on a mat")
    qtbot.waitUntil(lambda: len(threads) == 2, timeout=5000)
    counter.deleteLater()  # the window closes while the count runs
    qtbot.wait(50)
    release.set()
    threads[1].join(5)
    qtbot.wait(100)  # the count's delivery, had it been queued to the deleted counter
    assert not threads[1].is_alive() and failures == []
