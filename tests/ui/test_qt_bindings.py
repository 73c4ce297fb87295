"""The Qt bindings themselves: PySide6 6.12.0 lost a reference to None at every ``QModelIndex.data()`` that
answered None, and to True at every call from another thread into the qasync loop. On Python 3.11, where None
and True can be freed, Studio then aborted after a long scroll of the gallery or a few hundred jobs. These
tests fail on such a version, whatever ``pyproject.toml`` allows."""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

CALLS = 1000


class _Nothing(QAbstractListModel):
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> None:
        return None


def test_reading_none_through_a_model_index_keeps_nones_references(qapp):  # noqa: ANN001
    model = _Nothing()
    index = model.index(0)
    before = sys.getrefcount(None)
    for _ in range(CALLS):
        index.data(Qt.ItemDataRole.UserRole)
    assert sys.getrefcount(None) > before - CALLS // 10


def test_calls_from_another_thread_into_the_loop_keep_trues_references(qtbot, qt_loop):  # noqa: ANN001
    arrived: list[int] = []
    before = sys.getrefcount(True)

    def engine_thread() -> None:
        for number in range(CALLS):
            qt_loop.call_soon_threadsafe(arrived.append, number)

    thread = threading.Thread(target=engine_thread)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(arrived) == CALLS, timeout=10000)
    assert sys.getrefcount(True) > before - CALLS // 10
