"""A model list's entries for models chosen from outside the model library (a recipe's VAE or ControlNet given by
its path): each is listed by its name and what it is ("dreamshaper_8 (not a VAE)"), its file read in a worker thread
as soon as it is chosen, not when a job is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

from studio.core.outside_library import NOT_IN_LIBRARY, OutsideModel, is_path, listed_name, outside_model, short_name
from studio.ui.tasks import Tasks, loop_can_run_tasks


class OutsideEntries:
    """The entries of ``combo`` (whose entry 0 is its "none chosen") for models outside the library, of the ``kind``
    a WANTED_KINDS key names. ``in_library``: whether the library has listed a value since (its entry then is the
    library's); ``on_found``: called once what an entry is has been read."""

    def __init__(self, combo: QComboBox, kind: str, tasks: Tasks, in_library: Callable[[str], bool],
                 on_found: Callable[[], None] = lambda: None) -> None:
        self._combo = combo
        self._kind = kind
        self._tasks = tasks
        self._in_library = in_library
        self._on_found = on_found
        self._found: dict[str, OutsideModel] = {}  # what each one read is

    def found(self, value: str) -> OutsideModel | None:
        """What the model ``value`` was found to be; None until its file has been read."""
        return self._found.get(value)

    def add(self, value: str) -> int:
        """List ``value`` as an entry of its own, named with what is known of it, and read what it is (a path; a bare
        name is in the models folder, which the library has looked in). Returns the entry's index."""
        self._combo.addItem(value, value)
        index = self._combo.count() - 1
        self._name(index, value, self._found.get(value, OutsideModel(NOT_IN_LIBRARY)))
        if is_path(value) and loop_can_run_tasks():  # looked at again: the file may have changed since
            self._tasks.run(self._check(value))
        return index

    async def _check(self, value: str) -> None:
        found = await asyncio.to_thread(outside_model, value, self._kind)
        index = self._combo.findData(value)
        if index <= 0 or self._in_library(value):  # gone, or in the library by now
            return
        self._found[value] = found
        self._name(index, value, found)
        self._on_found()

    def _name(self, index: int, value: str, found: OutsideModel) -> None:
        self._combo.setItemText(index, listed_name(short_name(value), found.note))
        self._combo.setItemData(index, found.problem or f"{value} is not in the model library",
                                Qt.ItemDataRole.ToolTipRole)
