"""The main window's lifecycle: starting its work once the asyncio loop runs (engine events, the offer of an earlier
Studio's unsaved work, autosave), and closing it (asking first, then stopping jobs, autosave and timers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent

from studio.core.errors import os_reason
from studio.services.autosave import Autosaver
from studio.ui.close_questions import DISCARD_WORK, KEEP_WORK, add_kept_entries, quit_question
from studio.ui.crash_recovery import RecoveryChoice, SwitchOffChoice, ask_to_restore, ask_to_switch_off, offer_recovery
from studio.ui.modal import modal
from studio.ui.tasks import loop_can_run_tasks

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


class WindowLifecycle:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self._close_answer: str | None = None  # once asked: KEEP_WORK or DISCARD_WORK, for the close that follows
        self._kept_entries_tried = False  # whether this close tried to add the history entries kept meanwhile

    def start(self, recovery_choice: RecoveryChoice | None, switch_off_choice: SwitchOffChoice | None) -> None:
        window = self.window
        window.jobs.start()
        window.actions_.run(window.history_actions.start())
        choose = recovery_choice or (lambda saved: ask_to_restore(window, saved))
        switch_off = switch_off_choice or (lambda running: ask_to_switch_off(window, running))
        window.recovery = window.actions_.run(offer_recovery(window, choose, switch_off))
        try:
            window.autosaver = Autosaver(window.data_dir / "autosave", window.snapshot,
                                         on_failure=window.status.add_notice)
            window.autosaver.start()
            window.service.watch_plugins(window.autosaver.mark_plugin)
        except OSError as exc:
            window.status.add_notice(f"Autosave is off: Studio could not make its folder in "
                                     f"{window.data_dir / 'autosave'} ({os_reason(exc)}), so unsaved work is not kept "
                                     "if Studio stops.")
        window.plugin_actions.say_state_notice()

    def close_now(self, event: QCloseEvent) -> bool:
        """Whether the window closes now, its jobs cancelled and its autosave closed; False: the close is refused
        while questions are asked (or kept history entries added) first, and made again once that is done."""
        window = self.window
        # Quitting cancels every job (as Krita and InvokeAI ask, ask) and, unless kept, loses unsaved canvas work.
        # The questions are asked from a task through modal(): a dialog's own loop run here, inside qasync's, left the
        # window's tasks unable to wake. The close is refused meanwhile and made again once answered.
        asking = self._close_answer is None and window.asks_before_closing and self._close_questions_needed()
        if asking and loop_can_run_tasks():
            event.ignore()
            if window.closing is None or window.closing.done():
                window.closing = window.actions_.run(self._ask_then_close())
            return False
        # Entries kept while another program held the history's lock: added (waiting briefly) or, if not, said, while
        # the window is still there to say it. A second close meanwhile closes at once (they stay journaled).
        if (not asking and window.asks_before_closing and not self._kept_entries_tried
                and window.history.pending_count() and loop_can_run_tasks()):
            event.ignore()
            self._kept_entries_tried = True
            window.actions_.run(self._add_kept_entries_then_close())
            return False
        keep = self._close_answer == KEEP_WORK or asking  # no loop left to ask from: kept, as after a crash
        self._close_answer = None
        window.persist_settings()
        window.submission.drop_waiting()
        window.service.cancel_all()
        window.jobs.stop()
        if window.autosaver is not None:
            window.service.watch_plugins(None)
            window.autosaver.close(keep=keep)  # else a clean exit leaves nothing to recover
            window.autosaver = None
        for timer in window.findChildren(QTimer):  # no query or refresh may start against stores about to close
            timer.stop()
        return True

    def _jobs_left(self) -> tuple[int, int]:
        running, waiting = (len(self.window.queue_panel.job_ids(state)) for state in ("running", "waiting"))
        return running, waiting

    def _close_questions_needed(self) -> bool:
        return any(self._jobs_left()) or self.window.document.changed_since_save

    async def _ask_then_close(self) -> None:
        window = self.window
        running, waiting = self._jobs_left()
        if (running or waiting) and not await modal(lambda: window.confirm_quit(quit_question(running, waiting))):
            return
        answer = DISCARD_WORK
        if window.document.changed_since_save:
            answer = await modal(window.confirm_unsaved_work)
            if answer == KEEP_WORK and (window.autosaver is None or (not await window.autosaver.save_now()
                                                                      and window.autosaver.last_error is not None)):
                answer = None
                window.status.set_message("Your unsaved work could not be kept (autosave is not working), so Studio "
                                          "stays open: save the picture and mask yourself first.", error=True)
            if answer is None:
                return
        self._close_answer = answer
        window.close()

    async def _add_kept_entries_then_close(self) -> None:
        said = await add_kept_entries(self.window.history, self.window.status.set_message)
        if said is not None:
            await modal(lambda: self.window.tell_entries_not_added(said))
        self.window.close()
