"""Plugins: what is installed (from manifests, no plugin code imported), on/off, install, update, remove.

Planning and installing run pip in a subprocess, off the UI thread; the person sees what would be
installed and says yes before anything is put in place.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError, os_reason
from studio.plugin_host.host import DISABLED, ENABLED, PluginHost, PluginRecord
from studio.ui.dialog_room import keep_rows_in_sight, keep_wrapped_text_whole
from studio.ui.modal import modal
from studio.ui.task_dialog import TaskDialog, brush
from studio.ui.theme import icon

STATUS_COLOURS = {ENABLED: "#7ccf8a", DISABLED: "#9aa3b2"}


class PluginsDialog(TaskDialog):
    def __init__(self, host: PluginHost, index_url: str = "", start_dir: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.index_url = index_url
        self._last_failure = ""  # why the last install did not happen (for Update's summary)
        self._index_skipped: list[str] = []  # the last index's entries that could not be read, each in a sentence
        self._start_dir = start_dir
        # The window's live jobs that run a plugin's code, as (job id, what the queue calls it, running/waiting), and
        # how one is cancelled: an uninstall asks about them and cancels them first (the window sets these).
        self.jobs_of: Callable[[str], list[tuple[int, str, str]]] = lambda plugin_id: []
        self.cancel_job: Callable[[int], object] = lambda job_id: None
        self.setWindowTitle("Plugins")
        self.resize(860, 520)
        layout = QVBoxLayout(self)
        intro = QLabel("Installed plugins, read from their manifests. Installing is not enabling: nothing from a "
                       "plugin runs until you enable it." + (" Safe mode: no plugin is loaded this session."
                                                             if host.safe_mode else ""))
        intro.setWordWrap(True)
        intro.setObjectName("hintLabel")
        layout.addWidget(intro)
        splitter = QSplitter()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Plugin", "Version", "Status"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 220)
        self.tree.currentItemChanged.connect(lambda *_: self._show_details())
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.details.setOpenExternalLinks(True)
        self.details.setMinimumWidth(320)
        self.details.setContentsMargins(12, 4, 4, 4)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.details)
        splitter.setSizes([460, 400])
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message)

        buttons = QHBoxLayout()
        self.toggle_button = QPushButton("Enable")
        self.toggle_button.clicked.connect(self._toggle)
        self.uninstall_button = QPushButton(icon("remove"), "Uninstall")
        self.uninstall_button.clicked.connect(lambda: self.start(self.uninstall(self._selected_id())))
        self.install_button = QPushButton(icon("open"), "Install from File…")
        menu = QMenu(self.install_button)
        menu.addAction("A wheel, sdist or zip…", self._choose_file)
        menu.addAction("A plugin folder…", self._choose_folder)
        self.install_button.setMenu(menu)
        self.index_button = QPushButton(icon("plugin"), "Install from Index…")
        self.index_button.clicked.connect(lambda: self.start(self.browse_index()))
        self.update_button = QPushButton(icon("refresh"), "Update")
        self.update_button.setToolTip("Install newer versions from the plugin index")
        self.update_button.clicked.connect(lambda: self.start(self.update_all()))
        for widget in (self.toggle_button, self.uninstall_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        for widget in (self.install_button, self.index_button, self.update_button):
            buttons.addWidget(widget)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.action_buttons = [self.toggle_button, self.uninstall_button, self.install_button, self.index_button,
                               self.update_button]
        self.reload()
        keep_rows_in_sight(self.tree)
        keep_wrapped_text_whole(self, intro, self.message, chars=60)
        if host.state_notice:  # a damaged list of enabled plugins, set aside
            self._report(host.state_notice, error=True)

    # -- list ----------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        select = select or self._selected_id()
        self.tree.clear()
        for record in self.host.records:
            item = QTreeWidgetItem([record.name, record.version, record.status])
            item.setData(0, Qt.ItemDataRole.UserRole, record.id)
            item.setIcon(0, icon("plugin"))
            item.setForeground(2, brush(STATUS_COLOURS.get(record.status, "#e8a25c")))
            if record.error:
                item.setToolTip(2, record.error)
            self.tree.addTopLevelItem(item)
            if record.id == select:
                self.tree.setCurrentItem(item)
        self._settle_selection()

    def _selected_id(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def _selected(self) -> PluginRecord | None:
        plugin_id = self._selected_id()
        return next((r for r in self.host.records if r.id == plugin_id), None)

    def _show_details(self) -> None:
        record = self._selected()
        self.toggle_button.setEnabled(record is not None and record.found.manifest is not None)
        self.uninstall_button.setEnabled(record is not None)
        if record is None:
            # Plain: the details can be selected and copied, and breakable_path's zero-width spaces would go along.
            folder = html.escape(str(self.host.plugins_dir))
            self.details.setText(f"No plugins are installed yet. Use <b>Install from File…</b> or <b>Install from "
                                 f"Index…</b>.<br><br>Plugins go to {folder}.")
            self.toggle_button.setText("Enable")
            return
        self.toggle_button.setText("Disable" if record.id in self.host.enabled_ids() else "Enable")
        self.details.setText(describe(record))

    # -- actions -------------------------------------------------------------------------------
    def _toggle(self) -> None:
        record = self._selected()
        if record is None:
            return
        enable = record.id not in self.host.enabled_ids()
        if enable and record.found.manifest and not self.confirm(
                "Enable Plugin", f"Enable {record.name} {record.version}? Its code will run inside Studio when you "
                                 f"use it. It asks for: {record.found.manifest.permissions.describe()}.", None):
            return
        try:
            record = self.host.set_enabled(record.id, enable)
        except StudioError as exc:
            self._report(str(exc), error=True)
            return
        self.reload(record.id)
        self._report(f"{record.name} is {record.status}.{'' if enable else self._threads_left(record)}")

    def _threads_left(self, record: PluginRecord) -> str:
        count = self.host.background_threads(record)
        if not count:
            return ""
        return (f" Its {count} background thread{'s keep' if count > 1 else ' keeps'} running until Studio "
                "restarts.")

    def _choose_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Install a Plugin", str(self._start_dir or ""),
                                              "Plugin packages (*.whl *.zip *.tar.gz *.tgz)")
        if name:
            self.start(self.install(Path(name)))

    def _choose_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Install a Plugin Folder", str(self._start_dir or ""))
        if name:
            self.start(self.install(Path(name)))

    async def install(self, source: Any, report: bool = True) -> str | None:
        """Plan (dry run), ask, install. The sentence that says it was installed, or None (said when ``report``)."""
        from studio.plugin_host.installer import PluginInstaller

        self._busy(f"Checking {getattr(source, 'name', source)}… (pip dry run)")
        # Made off this thread: it reads every installed package's metadata (60-290 ms).
        installer = await asyncio.to_thread(PluginInstaller, self.host.plugins_dir)
        plan = None
        try:
            plan = await asyncio.to_thread(installer.plan, source, self.host.taken_ids(),
                                           self.host.taken_contributions(), self.host.enabled_dependencies())
            stays_on = plan.replaces is not None and plan.manifest.id in self.host.enabled_ids()  # as an update
            after = ("It replaces the enabled version and stays enabled." if stays_on
                     else "It stays disabled until you enable it.")
            if not await self.confirmed("Install Plugin", f"{plan.describe()}\n\nInstall it? {after}"):
                self._report("Nothing was installed.")
                return None
            self._busy(f"Installing {plan.manifest.name}…")
            await asyncio.to_thread(installer.install, plan)
        except (StudioError, OSError) as exc:  # OSError: a full disk, a read-only plugins folder
            reason = str(exc) if isinstance(exc, StudioError) else \
                f"Could not install into {self.host.plugins_dir}: {os_reason(exc)}."
            if report:
                self._report(reason, error=True)
            else:
                self._busy("")
            self._last_failure = reason
            return None
        finally:
            if plan is not None:
                with suppress(OSError):
                    await asyncio.to_thread(installer.discard, plan)
        stays_on = self.host.after_install(plan.manifest.id, updated=plan.replaces is not None)
        self.reload(plan.manifest.id)
        done = f"Installed {plan.manifest.name} {plan.version}." + ("" if stays_on else " Enable it to use it.")
        if report:
            self._report(done)
        return done

    async def uninstall(self, plugin_id: str | None) -> bool:
        record = self._selected() if plugin_id is None else self.host.record(plugin_id)
        if record is None:
            return False
        if not record.found.managed:
            self._report(f"{record.name} was installed into Python's environment, not by Studio; remove it with "
                         f"pip uninstall {record.found.distribution}.", error=True)
            return False
        if not await self.confirmed("Uninstall Plugin", f"Remove {record.name} {record.version} and its files?"
                                                        f"{_jobs_sentence(self.jobs_of(record.id), ' ')}",
                                    "Uninstall"):
            return False
        from studio.plugin_host.installer import PluginInstaller

        # Cancelled, not left to finish: its files go now, and a job reading one of them (a module imported late, a
        # data file) would fail halfway. The canvas keeps its picture either way. Read again after the answer: a job
        # queued while the question was open would otherwise run against deleted files.
        jobs = self.jobs_of(record.id)
        for job_id, _title, _state in jobs:
            self.cancel_job(job_id)
        cancelled = f" {_its_jobs(jobs)} {'was' if len(jobs) == 1 else 'were'} cancelled." if jobs else ""
        self._busy(f"Removing {record.name}…")
        try:
            # Made off this thread too: it reads every installed package's metadata (60-290 ms).
            installer = await asyncio.to_thread(PluginInstaller, self.host.plugins_dir)
            await asyncio.to_thread(self.host.uninstall, record.id, installer.uninstall)
        except (StudioError, OSError) as exc:  # OSError: a state.json that cannot be written
            reason = str(exc) if isinstance(exc, StudioError) else \
                f"Could not remove {record.name} from {self.host.plugins_dir}: {os_reason(exc)}."
            self._report(f"{reason}{cancelled}", error=True)  # the jobs stay cancelled: said, not hidden
            self.reload(record.id)
            return False
        self.reload()
        self._report(f"Removed {record.name}.{cancelled} Its modules stay loaded until Studio restarts."
                     f"{self._threads_left(record)}")
        return True

    async def _index_entries(self) -> list[Any] | None:
        from studio.plugin_host.plugin_index import read_index

        # Asked every time, with the last address filled in: a mistyped one can be put right.
        url, ok = await modal(lambda: QInputDialog.getText(self, "Plugin Index",
                                                           "Address of a plugin index (a JSON list):",
                                                           text=self.index_url))
        if not ok or not url.strip():
            return None
        self._busy(f"Reading {url.strip()}…")
        try:
            listing = await asyncio.to_thread(read_index, url.strip())
        except StudioError as exc:
            self._report(str(exc), error=True)
            return None
        self.index_url = url.strip()  # kept (and saved) only once it worked
        self._index_skipped = listing.skipped  # said with what the index was read for
        return listing.entries

    async def browse_index(self) -> None:
        entries = await self._index_entries()
        if entries is None:
            return
        self._busy("")
        if not entries:
            self._report(" ".join([f"The index {self.index_url} lists no plugins it could read.", *self._index_skipped])
                         if self._index_skipped else f"The index {self.index_url} lists no plugins.",
                         error=bool(self._index_skipped))
            return
        if self._index_skipped:  # before the list, which does not hold them
            self._report(" ".join(self._index_skipped), error=True)
        labels = [f"{e.name} {e.version} — {e.summary}" for e in entries]
        label, ok = await modal(lambda: QInputDialog.getItem(self, "Install from Index", "Plugin:", labels, 0, False))
        if ok:
            await self.install(entries[labels.index(label)])

    async def update_all(self) -> None:
        from studio.plugin_host.plugin_index import updates

        entries = await self._index_entries()
        if entries is None:
            return
        installed = {r.id: r.version for r in self.host.records if r.found.managed}
        newer = updates(entries, installed)
        skipped = self._index_skipped
        if not newer:  # a skipped entry may have been a plugin's update: "every plugin" would not be known
            self._report(" ".join([*skipped, "No update was found in the entries that could be read."]) if skipped
                         else "Every plugin is up to date.", error=bool(skipped))
            return
        done, failed = [], []
        for entry, _current in newer:
            installed_now = await self.install(entry, report=False)
            if installed_now is not None:
                done.append(installed_now)
            else:
                failed.append(f"{entry.name} was not updated: {self._last_failure}" if self._last_failure
                              else f"{entry.name} was not updated.")
            self._last_failure = ""
        self._report(" ".join([*done, *failed, *skipped]), error=bool(failed or skipped))


def _its_jobs(jobs: list[tuple[int, str, str]]) -> str:
    """"Its job 'Filter: Blur'", "Its jobs 'A' and 'B'"."""
    names = [f"'{title}'" for _id, title, _state in jobs]
    return f"Its job {names[0]}" if len(names) == 1 else f"Its jobs {', '.join(names[:-1])} and {names[-1]}"


def _jobs_sentence(jobs: list[tuple[int, str, str]], before: str = "") -> str:
    """What an uninstall does to the plugin's live jobs, for its question ('' with none)."""
    if not jobs:
        return ""
    doing = " or ".join(sorted({state for _id, _title, state in jobs}))
    one = len(jobs) == 1
    return (f"{before}{_its_jobs(jobs)} {'is' if one else 'are'} {doing}; uninstalling cancels "
            f"{'it' if one else 'them'} first (the canvas keeps its picture).")


def describe(record: PluginRecord) -> str:
    """Rich text about one plugin, for the details pane."""
    found, manifest = record.found, record.found.manifest
    e = html.escape
    lines = [f"<h3>{e(record.name)} <span style='color:#9aa3b2'>{e(record.version)}</span></h3>"]
    if manifest is not None:
        if manifest.description:
            lines.append(f"<p>{e(manifest.description)}</p>")
        facts = [("Id", e(manifest.id)), ("Author", e(manifest.author) or "—")]
        if manifest.homepage.startswith(("https://", "http://")):
            facts.append(("Homepage", f"<a href='{e(manifest.homepage)}'>{e(manifest.homepage)}</a>"))
        facts.append(("Permissions", e(manifest.permissions.describe())))
        facts.append(("Plugin API", e(manifest.api_version)))
        for kind, title in (("generator", "Generators"), ("postprocessor", "Post-processors")):
            specs = manifest.of_kind(kind)
            if specs:
                facts.append((title, ", ".join(e(s.title) for s in specs)))
    else:
        facts = [("Entry point", e(found.entry_name))]
    facts.append(("Installed", e(str(found.location)) if found.managed else
                  f"in Python's environment ({e(found.distribution)})"))
    facts.append(("Status", e(record.status)))
    if record.failures:
        facts.append(("Failures", f"{record.failures} this session"))
    lines.append("<table cellspacing='4'>" + "".join(
        f"<tr><td style='color:#9aa3b2'>{k}</td><td>{v}</td></tr>" for k, v in facts) + "</table>")
    if record.error:
        lines.append(f"<p style='color:#ff8a80'>{e(record.error)}</p>")
    return "".join(lines)
