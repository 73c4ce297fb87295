"""Benchmark: opening the gallery panel over a history of 100,000 pictures, to its first painted page.

Counts what the person waits for: opening the store (its integrity check included), building the
panel, the newest-first query, and the first paint of the visible rows.
Run: QT_QPA_PLATFORM=offscreen python tests/benchmarks/gallery_open.py [COUNT]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from history_search import build  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.services.history_store import HistoryStore  # noqa: E402


def open_gallery(db: Path, thumbs: Path) -> float:
    """Seconds from opening the store to the gallery's first painted page (on a running asyncio loop)."""
    from studio.ui.gallery_panel import GalleryPanel

    started = time.perf_counter()
    store = HistoryStore(db)
    panel = GalleryPanel(store, thumbs)
    panel.resize(420, 800)
    panel.show()
    asyncio.get_event_loop().run_until_complete(panel.reload())
    panel.view.viewport().repaint()
    seconds = time.perf_counter() - started
    assert panel.model.rowCount() > 0
    panel.close()
    panel.deleteLater()
    QApplication.processEvents()  # the deleted panel's remaining layout batches stop here
    store.close()
    return seconds


def main() -> int:
    import qasync

    from studio.ui.theme import apply_dark_theme

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    app = QApplication.instance() or QApplication(sys.argv)
    apply_dark_theme(app)
    folder = Path(tempfile.mkdtemp(prefix="studio-gallery-bench-"))
    store, _ = build(folder / "history.db", count)
    store.close()
    asyncio.set_event_loop(qasync.QEventLoop(app))
    times = sorted(open_gallery(folder / "history.db", folder / "thumbs") for _ in range(5))
    print(f"{count:,} entries: gallery open to first painted page: median {times[2] * 1000:.0f} ms, "
          f"max {times[-1] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
