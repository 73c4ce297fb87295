"""Standing notices: every problem said at the window's start (and later ones that stay true) reaches the person,
whatever messages come after it; the status bar counts them and its popup shows each in full."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QToolButton

from studio.ui.status_bar import StudioStatusBar

SETTINGS_NOTE = "The settings file could not be read; Studio started with its defaults."
AUTOSAVE_OFF = "Autosave is off: [Errno 28] No space left on device: '/data/autosave'"


def test_a_later_message_replaces_a_notice_on_the_line_but_the_notices_button_keeps_each(qtbot) -> None:  # noqa: ANN001
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.resize(1200, 30)
    bar.show()
    assert bar.notices.isHidden()  # nothing to say: no room taken
    bar.add_notice(SETTINGS_NOTE)
    bar.add_notice(AUTOSAVE_OFF)
    assert bar.message_label.text() == AUTOSAVE_OFF and bar.message_label.property("error")  # the newest
    bar.add_notice(SETTINGS_NOTE)  # said again: on the line again, still one notice
    bar.set_message("Ready. Write a prompt and press Generate (Ctrl+Enter).")
    assert bar.notices.notices() == [SETTINGS_NOTE, AUTOSAVE_OFF]
    assert bar.notices.isVisible() and bar.notices.text() == "2 notices"
    assert SETTINGS_NOTE in bar.notices.toolTip() and "No space left on device: &#x27;/data/autosave&#x27;" in \
        bar.notices.toolTip()

    qtbot.mouseClick(bar.notices, Qt.MouseButton.LeftButton)
    popup = bar.notices.popup
    qtbot.waitUntil(popup.isVisible, timeout=2000)
    assert [label.text() for label in popup.notice_labels()] == [SETTINGS_NOTE, AUTOSAVE_OFF]
    assert all(label.wordWrap() for label in popup.notice_labels())  # in full, not cut at the popup's edge
    assert popup.title.text() == "2 notices"

    first_row = popup.notice_labels()[0].parentWidget()
    qtbot.mouseClick(first_row.findChild(QToolButton), Qt.MouseButton.LeftButton)  # its dismiss button
    assert bar.notices.notices() == [AUTOSAVE_OFF] and bar.notices.text() == "1 notice"
    assert [label.text() for label in popup.notice_labels()] == [AUTOSAVE_OFF]

    bar.add_notice("The history database was damaged, so Studio set it aside.")
    qtbot.mouseClick(popup.dismiss_all_button, Qt.MouseButton.LeftButton)
    assert bar.notices.notices() == [] and bar.notices.isHidden() and not popup.isVisible()
    assert bar.message_label.text() == ""  # the dismissed notice it showed went with it
    bar.add_notice(AUTOSAVE_OFF)  # said anew (autosave failing again): counted again, alone
    qtbot.mouseClick(bar.notices, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(popup.isVisible, timeout=2000)
    assert [label.text() for label in popup.notice_labels()] == [AUTOSAVE_OFF]


def test_a_message_after_a_notice_stays_when_the_notice_is_dismissed(qtbot) -> None:  # noqa: ANN001
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.add_notice(SETTINGS_NOTE)
    bar.set_message("Saved the preset 'portrait'.")
    bar.notices.dismiss_all()
    assert bar.message_label.text() == "Saved the preset 'portrait'."


def test_a_notice_does_not_push_aside_a_problem_the_line_is_saying(qtbot) -> None:  # noqa: ANN001
    # A full disk: the job's "The image could not be saved …" was replaced within 0.1 s by the autosave's failure.
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    unsaved = "The image could not be saved in /full: File too large. Finished in 0.64 s."
    bar.set_message(unsaved, error=True)
    bar.add_notice(AUTOSAVE_OFF)
    assert bar.message_label.text() == unsaved and bar.message_label.property("error")
    assert bar.notices.notices() == [AUTOSAVE_OFF] and bar.notices.text() == "1 notice"
    bar.set_message("Finished in 0.50 s.")  # no problem on the line: a notice is shown there as it comes
    bar.add_notice(SETTINGS_NOTE)
    assert bar.message_label.text() == SETTINGS_NOTE


def test_a_window_started_with_several_problems_shows_every_one(  # noqa: ANN001
        qtbot, qt_loop, studio_home, plugin_sandbox, artifacts_dir):
    # Each replaced the one before on the status line: only the last said at the start was ever seen, and the
    # next "Ready…" or job message hid that one too.
    from studio.core.environment import GeneratorEnvironment
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.plugin_host.host import PluginHost
    from studio.services.history_store import HistoryStore
    from studio.services.jobs import JobService
    from studio.services.outputs import OutputStore
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text("steps = [\n", encoding="utf-8")  # not TOML: set aside
    paths.data_dir.mkdir(parents=True)
    (paths.data_dir / "autosave").write_text("a file where the autosave folder goes")  # autosave cannot start
    (paths.data_dir / "history.db").write_bytes(b"not a database" * 100)  # damaged: set aside
    paths.plugins_dir.mkdir(parents=True)
    (paths.plugins_dir / "state.json").write_text("not json")  # set aside: all plugins off
    host = PluginHost(paths.plugins_dir, scan_environment=False)
    host.refresh()
    settings = load_settings(paths)
    settings_note = settings.load_note
    history = HistoryStore(paths.data_dir / "history.db")
    service = JobService(None, GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         OutputStore(settings.outputs_dir), history=history, plugins=host)
    window = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    window.start()
    try:
        bar = window.status
        qtbot.waitUntil(lambda: len(bar.notices.notices()) == 4, timeout=5000)  # the history's comes off a task
        notices = bar.notices.notices()
        assert settings_note.startswith("The settings file could not be read") and notices[0] == settings_note
        assert notices[1] == (f"Autosave is off: Studio could not make its folder in {paths.data_dir / 'autosave'} "
                              "(Not a directory), so unsaved work is not kept if Studio stops.")
        assert notices[2] == host.state_notice
        assert notices[3] == history.notice and notices[3].startswith("The history database was damaged")
        assert bar.message_label.text() == history.notice  # the line shows the newest
        bar.set_message("Ready. Write a prompt and press Generate (Ctrl+Enter).")  # an ordinary message after
        assert bar.notices.notices() == notices and bar.notices.isVisible() and bar.notices.text() == "4 notices"

        popup = bar.notices.show_popup()
        qtbot.waitUntil(popup.isVisible, timeout=2000)
        assert [label.text() for label in popup.notice_labels()] == notices
        assert window.geometry().contains(popup.geometry())  # over the window's corner, not off the screen
        for label in popup.notice_labels():
            assert QLabel.text(label) == label.text()  # whole: wrapped, never elided
        _screenshot(window, popup).save(str(artifacts_dir / "main-window-notices.png"))

        host.state_notice = ""  # as enabling or disabling a plugin does once it wrote a new list
        host.refresh()
        qtbot.waitUntil(lambda: len(bar.notices.notices()) == 3, timeout=5000)
        assert notices[2] not in bar.notices.notices()
    finally:
        window.close()
        history.close()


def _screenshot(window, popup) -> QPixmap:  # noqa: ANN001
    """The window with its popup drawn where it shows (a grab of the window leaves other windows out)."""
    picture = window.grab()
    painter = QPainter(picture)
    painter.drawPixmap(window.mapFromGlobal(popup.mapToGlobal(QPoint(0, 0))), popup.grab())
    painter.end()
    return picture
