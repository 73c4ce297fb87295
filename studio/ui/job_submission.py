"""Generate's request handed to the job service, in the order Generate was pressed. A plugin generator's picture
file is read in a worker thread first: on the window's thread a big PNG or JPEG held it tens to hundreds of ms. A
request made meanwhile waits its turn behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.errors import StudioError
from studio.core.parameters import Param
from studio.core.requests import GenerationRequest
from studio.ui.parameter_pictures import read_pictures
from studio.ui.tasks import Tasks

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


class JobSubmission:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self._tasks = Tasks()
        self._in_turn: asyncio.Task | None = None  # the last request still being read or waiting its turn

    def submit(self, request: GenerationRequest) -> None:
        """Queue the request: at once where it has no picture file to read and none is ahead of it; otherwise
        from a task. What is wrong with it (a file that is no picture) is said in the prompt panel."""
        revision = self.window.document.revision  # the document the request was just made from
        unread = any(isinstance(value, Path) for value in request.params.values())
        if unread or (self._in_turn is not None and not self._in_turn.done()):
            generator = self.window.prompt_panel.selected_generator()  # the one the request was just made from
            schema = generator.parameters if generator is not None and generator.id == request.generator else ()
            self._in_turn = self._tasks.run(self._read_and_submit(request, schema, self._in_turn, revision))
        else:
            self._submit(request, revision)

    async def _read_and_submit(self, request: GenerationRequest, schema: Sequence[Param],
                               ahead: asyncio.Task | None, revision: int) -> None:
        problem = ""
        try:
            request = replace(request, params=await asyncio.to_thread(read_pictures, schema, request.params))
        except StudioError as exc:
            problem = str(exc)
        if ahead is not None:
            await asyncio.wait([ahead])  # said, or queued, after the Generate pressed before it
        if problem:
            self.window.prompt_panel.show_error(problem)
        else:
            self._submit(request, revision)

    def drop_waiting(self) -> None:
        """On quit: a request still being read is dropped, as the queued jobs are cancelled."""
        self._tasks.cancel_all()

    def _submit(self, request: GenerationRequest, revision: int) -> None:
        panel = self.window.prompt_panel
        try:
            self.window.service.submit(request)
        except StudioError as exc:
            gone = self.window.models.forget_gone_model(request.model) if request.generator == "diffusers" else ""
            panel.show_error(gone or str(exc))
            return
        self.window.results.sent(request, revision)
        panel.clear_error()
        panel.prompt_edit.remember(request.prompt)
        self.window.save_settings_soon()
