"""The autosave: the document on disk at once after a change, the latest state only, and gone after a clean exit."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core import document_io
from studio.core.document_io import DocumentSnapshot, load_document
from studio.services import autosave
from studio.services.autosave import Autosaver, find_recoverable


class Work:
    """A document whose revision moves on, as the window's does."""

    def __init__(self) -> None:
        self.revision = 0

    def change(self) -> None:
        self.revision += 1

    def snapshot(self) -> DocumentSnapshot:
        picture = Image.new("RGB", (32, 24), (self.revision * 20 % 256, 0, 0))
        return DocumentSnapshot(picture, np.zeros((24, 32), dtype=np.uint8), None, self.revision)


def test_saves_that_pile_up_behind_a_slow_one_write_the_latest_state_once(tmp_path: Path, monkeypatch):  # noqa: ANN001
    work = Work()
    writing = threading.Event()
    written: list[int] = []
    real_save = document_io.save_document

    def slow_save(snapshot: DocumentSnapshot, folder: Path) -> None:
        writing.wait(5)  # a 4096x4096 picture took 1.3 s
        written.append(snapshot.revision)
        real_save(snapshot, folder)

    monkeypatch.setattr(autosave, "save_document", slow_save)

    async def scenario() -> list[bool]:
        saver = Autosaver(tmp_path / "autosave", work.snapshot, interval=3600)
        work.change()
        first = asyncio.ensure_future(saver.save_now())
        await asyncio.sleep(0.05)
        waiting = []
        for _ in range(3):  # three results land while the first is written
            work.change()
            waiting.append(asyncio.ensure_future(saver.save_now()))
        await asyncio.sleep(0.05)
        writing.set()
        results = await asyncio.gather(first, *waiting)
        assert load_document(saver.folder).image.getpixel((0, 0)) == (80, 0, 0)  # revision 4's picture
        assert not find_recoverable(tmp_path / "autosave")  # this Studio holds its lock
        saver.close()
        return results

    results = asyncio.run(scenario())
    assert written == [1, 4] and results == [True, True, False, False]
    assert not (tmp_path / "autosave").exists() or not any((tmp_path / "autosave").iterdir())
