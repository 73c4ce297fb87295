"""A download's progress as events for the window and the command line, and its Cancel, checked on every chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from studio.core.errors import JobCancelledError

if TYPE_CHECKING:
    from studio.services.model_downloads import DownloadPlan


@dataclass(frozen=True)
class DownloadProgress:
    repo_id: str
    file: str
    file_done: int
    file_total: int
    done_bytes: int
    total_bytes: int
    files_done: int
    files_total: int


class DownloadTracker:
    """huggingface_hub's progress bar (its ``tqdm_class`` hook, updated per chunk) turned into
    DownloadProgress events; cancel is polled on every chunk."""

    def __init__(self, plan: DownloadPlan, report: Callable[[DownloadProgress], None] | None,
                 cancelled: Callable[[], bool] | None) -> None:
        self.plan, self.report, self.cancelled = plan, report, cancelled or (lambda: False)
        self.before = self.files_done = 0  # bytes and count of the files already finished
        self.file, self.file_total, self.file_done = "", 0, 0

    def start(self, path: str, size: int) -> None:
        self._check_cancelled()
        self.file, self.file_total, self.file_done = path, size, 0

    def bar(self, *, initial: int = 0, **_: Any) -> DownloadTracker:  # what http_get calls as ``tqdm_class(...)``
        self.file_done = initial
        self._emit()
        return self

    def update(self, n: float = 1) -> None:
        self._check_cancelled()  # raised before http_get writes the chunk: the partial file ends on a whole chunk
        self.file_done += int(n)
        self._emit()

    def finish(self, size: int) -> None:
        self.before, self.files_done, self.file_done = self.before + size, self.files_done + 1, 0
        self._emit(file_done=size)

    def _emit(self, file_done: int | None = None) -> None:
        if self.report is not None:
            done = self.file_done if file_done is None else file_done
            self.report(DownloadProgress(self.plan.repo_id, self.file, done, self.file_total,
                                         self.before + self.file_done, self.plan.total_bytes,
                                         self.files_done, len(self.plan.files)))

    def _check_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelledError(f"The download of {self.plan.repo_id} was cancelled; run it again to resume.")

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
