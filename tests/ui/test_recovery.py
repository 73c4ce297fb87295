"""Work survives a crash: a killed Studio's autosave is found and restored at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from studio_testing import next_start_window

from studio.core.paths import studio_paths
from studio.services.autosave import find_recoverable


def _wait_for(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _window(qtbot):  # noqa: ANN001, ANN202
    """The main window as the next start makes it, and its job service."""
    window = next_start_window(qtbot)
    return window, window.service


def test_a_killed_studio_is_restored_at_the_next_start(qtbot, qt_loop, studio_home, tmp_path, monkeypatch):  # noqa: ANN001
    import threading

    from studio.ui import canvas_picture
    from studio.ui import crash_recovery as crash_recovery_module

    picture = Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    path = tmp_path / "work.png"
    picture.save(path)
    env = {**os.environ, "STUDIO_HOME": str(studio_home), "QT_QPA_PLATFORM": "offscreen",
           "STUDIO_AUTOSAVE_SECONDS": "0.3", "STUDIO_DEVICE": "cpu"}
    process = subprocess.Popen([sys.executable, "-m", "studio", "--open", str(path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    autosave_root = studio_paths().data_dir / "autosave"
    try:
        saved = _wait_for(lambda: any(autosave_root.glob("*/document.json")), timeout=60)
        assert saved, process.stderr.read().decode() if process.poll() is not None else "no autosave in 60 s"
        assert not find_recoverable(autosave_root)  # the running Studio holds its lock: nothing to recover yet
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    window, service = _window(qtbot)
    offered: list[Path] = []
    threads: list[str] = []
    real_scan = crash_recovery_module.scan_autosaves

    def scanning(root, damaged_into):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread().name)
        return real_scan(root, damaged_into)

    def on_this_thread(image):  # noqa: ANN001, ANN202
        raise AssertionError("the restored picture was converted on the window's thread")

    monkeypatch.setattr(crash_recovery_module, "scan_autosaves", scanning)
    monkeypatch.setattr(canvas_picture, "pil_to_qpixmap", on_this_thread)
    window.start(recovery_choice=lambda found: offered.append(found.folder) or True)
    service.start()
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert window.recovery.result() is True
        assert len(offered) == 1 and threads and threading.main_thread().name not in threads
        np.testing.assert_array_equal(np.asarray(window.document.image), np.asarray(picture))
        assert window.document.history_labels() == ["Restore after a crash"]
        assert not offered[0].exists()  # offered once, not again at every start
    finally:
        window.close()
        service.shutdown()
    assert not list(autosave_root.glob("*/document.json"))  # a clean exit leaves nothing behind


def test_older_unsaved_work_is_kept_as_pictures_and_restored_work_is_saved_before_its_autosave_goes(
        qtbot, qt_loop, studio_home, monkeypatch):  # noqa: ANN001
    """Two Studios stopped (a power cut): the newest autosave is offered, the older one becomes pictures in the
    outputs folder; the restored work is in this session's autosave before the old autosave is let go."""
    import json

    from studio.core.document_io import DOCUMENT_JSON, DocumentSnapshot, save_document
    from studio.core.metadata import Recipe
    from studio.ui import crash_recovery as crash_recovery_module

    paths = studio_paths()
    root = paths.data_dir / "autosave"
    rng = np.random.default_rng(4)
    older, newer = (Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)) for _ in range(2))
    mask = np.zeros((24, 32), np.uint8)
    mask[2:6, 3:9] = 255
    recipe = Recipe("an older idea", "", 4, "Euler", 7, 9, 32, 24, "tiny-sd")
    for name, image, saved_at in (("older", older, 1_000_000.0), ("newer", newer, 2_000_000.0)):
        save_document(DocumentSnapshot(image, mask if name == "older" else mask * 0, recipe, 3), root / name)
        meta = json.loads((root / name / DOCUMENT_JSON).read_text())
        (root / name / DOCUMENT_JSON).write_text(json.dumps({**meta, "saved_at": saved_at}))
    window, service = _window(qtbot)
    settings = window.settings
    saved_before_discard: list[bool] = []
    real_discard = crash_recovery_module.discard

    def discarding(saved):  # noqa: ANN001, ANN202
        own = window.autosaver.folder / DOCUMENT_JSON
        saved_before_discard.append(own.exists())
        real_discard(saved)

    monkeypatch.setattr(crash_recovery_module, "discard", discarding)
    offered: list[Path] = []
    window.start(recovery_choice=lambda found: offered.append(found.folder.name) or True)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert window.recovery.result() is True and offered == ["newer"]
        np.testing.assert_array_equal(np.asarray(window.document.image), np.asarray(newer))
        assert saved_before_discard == [True] and not (root / "newer").exists() and not (root / "older").exists()
        stem = "recovered-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(1_000_000))
        kept = [settings.outputs_dir / "Recovered" / f"{stem}{suffix}" for suffix in (".png", "-mask.png")]
        assert sorted((settings.outputs_dir / "Recovered").iterdir()) == sorted(kept)
        np.testing.assert_array_equal(np.asarray(Image.open(kept[0])), np.asarray(older))
        np.testing.assert_array_equal(np.asarray(Image.open(kept[1])), mask)
        from studio.core.images import read_recipe

        assert read_recipe(kept[0]).prompt == "an older idea"
        text = window.status.message_label.text()
        assert text.startswith("Restored the picture") and "1 older unsaved picture" in text and "Recovered" in text
    finally:
        window.close()
        service.shutdown()


def test_declined_work_is_kept_as_pictures_not_deleted(qtbot, qt_loop, studio_home):  # noqa: ANN001
    """Answering No to "Restore your work?" used to delete the autosave for good; now the picture and mask are
    kept in the outputs folder's Recovered folder, and the status line says where."""
    import json

    from studio.core.document_io import DOCUMENT_JSON, DocumentSnapshot, save_document
    from studio.core.metadata import Recipe

    root = studio_paths().data_dir / "autosave"
    picture = Image.fromarray(np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    mask = np.zeros((24, 32), np.uint8)
    mask[4:9, 2:7] = 255
    save_document(DocumentSnapshot(picture, mask, Recipe("declined idea", "", 4, "Euler", 7, 9, 32, 24, "tiny-sd"), 2),
                  root / "crashed")
    meta = json.loads((root / "crashed" / DOCUMENT_JSON).read_text())
    (root / "crashed" / DOCUMENT_JSON).write_text(json.dumps({**meta, "saved_at": 1_500_000.0}))
    window, service = _window(qtbot)
    window.start(recovery_choice=lambda found: False)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert window.recovery.result() is False and window.document.image is None
        folder = window.settings.outputs_dir / "Recovered"
        stem = "recovered-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(1_500_000))
        kept = [folder / f"{stem}{suffix}" for suffix in (".png", "-mask.png")]
        assert sorted(folder.iterdir()) == sorted(kept)
        np.testing.assert_array_equal(np.asarray(Image.open(kept[0])), np.asarray(picture))
        np.testing.assert_array_equal(np.asarray(Image.open(kept[1])), mask)
        assert not (root / "crashed").exists()  # kept once, not offered again at every start
        text = window.status.message_label.text()
        assert text.startswith("Kept the unrestored picture and mask") and str(folder) in text
    finally:
        window.close()
        service.shutdown()


def test_a_damaged_autosave_is_moved_aside_and_said_once(qtbot, qt_loop, studio_home):  # noqa: ANN001
    """A crashed session's autosave with a truncated document.json and PNG was skipped with a log line at every
    start, forever, and the person never heard of it: now it is moved into the outputs folder's Recovered folder
    and a standing notice says so, once; a readable one beside it is still offered."""
    from studio.core.document_io import DocumentSnapshot, save_document

    root = studio_paths().data_dir / "autosave"
    bad = root / "20260101-000000-deadbeef"
    bad.mkdir(parents=True)
    (bad / "document.json").write_text('{"format": 1, "image": "image.png", "mask": "mask.png", "recipe": {"pro')
    (bad / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    (bad / "session.lock").write_text("")
    picture = Image.new("RGB", (32, 24), (10, 20, 30))
    save_document(DocumentSnapshot(picture, np.zeros((24, 32), np.uint8), None, 2), root / "readable")
    window, service = _window(qtbot)
    offered: list[str] = []
    window.start(recovery_choice=lambda found: offered.append(found.folder.name) or True)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert offered == ["readable"] and window.recovery.result() is True
        moved = window.settings.outputs_dir / "Recovered" / "damaged-20260101-000000-deadbeef"
        assert sorted(p.name for p in moved.iterdir()) == ["document.json", "image.png"] and not bad.exists()
        [notice] = window.status.notices.notices()
        assert notice.startswith("The autosave of an earlier Studio's unsaved work could not be read")
        assert notice.endswith(f"its files are now in {moved}.")
    finally:
        window.close()
        service.shutdown()
    window, service = _window(qtbot)  # the next start: nothing more to say
    window.start(recovery_choice=lambda found: True)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert window.status.notices.notices() == [] and moved.is_dir()
    finally:
        window.close()
        service.shutdown()


def test_the_status_line_says_what_was_restored_and_when_it_was_from(qtbot, qt_loop, studio_home):  # noqa: ANN001
    """Once restored, the line says when the work was autosaved and why it was offered; a picture with no mask
    painted is not said to have brought a mask back."""
    import json

    from studio.core.document_io import DOCUMENT_JSON, DocumentSnapshot, save_document
    from studio.core.metadata import Recipe
    from studio.services.autosave import KEPT_NAME

    root = studio_paths().data_dir / "autosave"
    recipe = Recipe("a red fox", "", 4, "Euler", 7, 9, 32, 24, "tiny-sd")
    saved_at = time.mktime((2026, 3, 14, 9, 26, 0, 0, 0, -1))
    expected = {"crashed": "Restored the picture autosaved at 09:26 on 14 Mar, before Studio stopped.",
                "kept": "Restored the picture and mask kept when Studio was closed (autosaved at 09:26 on 14 Mar)."}
    labels = {"crashed": "Restore after a crash", "kept": "Restore kept work"}
    for name, sentence in expected.items():
        mask = np.zeros((24, 32), np.uint8)
        if name == "kept":
            mask[2:6, 3:9] = 255
        save_document(DocumentSnapshot(Image.new("RGB", (32, 24), "red"), mask, recipe, 3), root / name)
        meta = json.loads((root / name / DOCUMENT_JSON).read_text())
        (root / name / DOCUMENT_JSON).write_text(json.dumps({**meta, "saved_at": saved_at}))
        if name == "kept":
            (root / name / KEPT_NAME).touch()
        window, service = _window(qtbot)
        window.start(recovery_choice=lambda found: True)
        try:
            qtbot.waitUntil(window.recovery.done, timeout=10_000)
            assert window.recovery.result() is True
            assert window.status.message_label.text() == sentence
            # Undo History names it by what happened: work kept on closing is no crash.
            assert window.document.history_labels() == [labels[name]]
        finally:
            window.close()
            service.shutdown()


def test_the_restore_question_names_a_mask_only_when_one_was_painted(qtbot, tmp_path):  # noqa: ANN001
    """As the line said once restored: an autosave with no mask painted is not offered as "picture and mask"."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.core.document_io import SavedDocument
    from studio.ui.crash_recovery import ask_to_restore

    saved_at = time.mktime((2026, 3, 14, 9, 26, 0, 0, 0, -1))
    for painted, offer in ((False, "Restore the picture it autosaved at 09:26 on 14 Mar (32×24)?"),
                           (True, "Restore the picture and mask it autosaved at 09:26 on 14 Mar (32×24)?")):
        mask = np.zeros((24, 32), np.uint8)
        mask[2:6, 3:9] = 255 if painted else 0
        saved = SavedDocument(tmp_path / f"autosave-{painted}", Image.new("RGB", (32, 24), "red"), mask, None, saved_at)
        asked: list[str] = []

        def answer() -> None:
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox):
                QTimer.singleShot(10, answer)  # the question is not up yet
                return
            asked.append(box.text())
            buttons.append({b.text(): box.buttonRole(b) for b in box.buttons()})
            defaults.append([b.text() if b else None for b in (box.defaultButton(), box.escapeButton())])
            next((b for b in box.buttons() if b.text() == "Keep in Recovered Folder"),
                 box.escapeButton() or box.buttons()[-1]).click()

        buttons: list[dict] = []
        defaults: list[list] = []
        QTimer.singleShot(0, answer)
        assert ask_to_restore(None, saved) is False
        assert offer in asked[0]
        # The buttons say what each does (keeping it aside loses nothing), and the folder is named in quotes.
        assert "kept as a picture in “Recovered” in your outputs folder" in asked[0]
        assert buttons == [{"Restore": QMessageBox.ButtonRole.AcceptRole,
                            "Keep in Recovered Folder": QMessageBox.ButtonRole.RejectRole}]
        assert defaults == [["Restore", "Keep in Recovered Folder"]]


def test_a_plugin_running_when_studio_died_is_named_at_the_next_start_and_can_be_switched_off(
        qtbot, qt_loop, studio_home, plugin_sandbox):  # noqa: ANN001
    from studio.services.autosave import RunningPlugin

    window, service, host, running = _window_after_a_plugin_killed_studio(qtbot, plugin_sandbox)
    asked: list[RunningPlugin] = []
    window.start(recovery_choice=lambda found: True, switch_off_choice=lambda plugin: asked.append(plugin) or True)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert asked == [running]
        assert "tp-crash" not in host.enabled_ids()
        assert "Switched off the plugin Test Plugin" in " ".join(window.status.notices.notices())
    finally:
        window.close()
        service.shutdown()


def test_a_generation_running_when_studio_died_is_said_with_the_restored_work(qtbot, qt_loop, studio_home):  # noqa: ANN001
    """The canvas and prompt come back from the autosave, but a job killed mid-inpaint left no trace: the job's
    marker (set at its start, cleared at its end) is found beside the dead Studio's autosave and said."""
    from studio.core.document_io import DocumentSnapshot, save_document
    from studio.core.events import JobFinished, JobStarted
    from studio.core.requests import GenerationRequest
    from studio.services.autosave import RUNNING_JOB, Autosaver

    # The window marks a generation while it runs, and clears the mark when it ends.
    window, service = _window(qtbot)
    window.start(recovery_choice=lambda found: False)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        marker = window.autosaver.folder / RUNNING_JOB
        window.jobs.requests[3] = GenerationRequest(model="tiny-sd", prompt="p")
        window.handle_event(JobStarted(3))
        assert marker.exists()
        window.handle_event(JobFinished(3, (), 1.0))
        assert not marker.exists()
    finally:
        window.close()
        service.shutdown()

    root = studio_paths().data_dir / "autosave"
    died = Autosaver(root, lambda: None, interval=3600)
    save_document(DocumentSnapshot(Image.new("RGB", (32, 24), "red"), np.zeros((24, 32), np.uint8), None, 3),
                  died.folder)
    died.mark_job(True)  # killed mid-job
    died._lock.release()
    window, service = _window(qtbot)
    window.start(recovery_choice=lambda found: True)
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert window.recovery.result() is True
        assert window.status.message_label.text().endswith(
            "before Studio stopped. A generation was running when Studio stopped; press Generate to run it again.")
    finally:
        window.close()
        service.shutdown()


def test_the_switch_off_question_names_the_plugin_and_what_it_was_running(qtbot):  # noqa: ANN001
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.services.autosave import RunningPlugin
    from studio.ui.crash_recovery import ask_to_switch_off

    asked: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, answer)  # the question is not up yet
            return
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == "Switch It Off").click()

    QTimer.singleShot(0, answer)
    assert ask_to_switch_off(None, RunningPlugin("hp-bad", "Hostile Bad", "1.0.0", "Hostile post")) is True
    assert asked == ["Studio stopped while the plugin Hostile Bad was running its Hostile post; it may have caused "
                     "this. Switch it off?"]


def test_a_plugin_running_when_studio_died_is_named_even_with_nobody_to_ask_about_switching_it_off(
        qtbot, qt_loop, studio_home, plugin_sandbox):  # noqa: ANN001
    """With no switch-off question, the plugin's crash was never mentioned, though it is said to be named first."""
    from studio.ui.crash_recovery import crashed_sentence, offer_recovery

    window, service, host, running = _window_after_a_plugin_killed_studio(qtbot, plugin_sandbox)
    try:
        recovery = window.actions_.run(offer_recovery(window, lambda found: False, None))
        qtbot.waitUntil(recovery.done, timeout=10_000)
        assert crashed_sentence(running) in window.status.notices.notices()
        assert "tp-crash" in host.enabled_ids()  # nobody said to switch it off
    finally:
        window.close()
        service.shutdown()


def _window_after_a_plugin_killed_studio(qtbot, plugin_sandbox):  # noqa: ANN001, ANN202
    """A window started where an earlier Studio died while the enabled plugin tp-crash ran: its marker was set
    before the plugin's code ran and never cleared (os._exit); the OS let that Studio's lock go."""
    from plugin_wheels import plugin_wheel
    from studio_testing import unpack_plugin

    from studio.core.environment import GeneratorEnvironment
    from studio.core.settings import load_settings
    from studio.plugin_host.host import PluginHost
    from studio.services.autosave import Autosaver, RunningPlugin
    from studio.services.jobs import JobService
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    unpack_plugin(paths.plugins_dir, plugin_wheel(plugin_sandbox / "wheels", plugin_id="tp-crash",
                                                  package="studio_tp_crash"), "tp-crash")
    host = PluginHost(paths.plugins_dir, scan_environment=False)
    host.refresh()
    host.set_enabled("tp-crash", True)
    running = RunningPlugin("tp-crash", "Test Plugin", "1.0.0", "Crash filter")
    died = Autosaver(paths.data_dir / "autosave", lambda: None, interval=3600)
    died.mark_plugin(running)
    died._lock.release()
    service = JobService(None, GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir), warm_up=False,
                         plugins=host)
    window = MainWindow(load_settings(paths), service, paths.data_dir)
    qtbot.addWidget(window)
    return window, service, host, running
