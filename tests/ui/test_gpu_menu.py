"""Settings → GPU on a machine without a GPU: it says so, its memory measures are off with the reason, and its
speed choices say what they do on the CPU."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

WAIT_MS = 60_000


def test_on_the_cpu_the_gpu_menu_says_so_and_offers_only_what_applies(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: window.status.device_label.text().startswith("CPU"), timeout=WAIT_MS)
    menu = window.models.gpu_menu
    menu.aboutToShow.emit()
    QApplication.processEvents()
    shown = [a for a in menu.actions() if a.isVisible() and not a.isSeparator()]
    assert shown[0].text() == "No GPU found: Studio runs on the CPU" and not shown[0].isEnabled()
    actions = {a.data(): a for a in shown if a.data()}
    for value in ("auto", "high", "low", "compile"):
        assert not actions[value].isEnabled(), actions[value].text()
        assert "CPU" in actions[value].toolTip() and actions[value].statusTip() == actions[value].toolTip()
    assert "system memory" in actions["low"].toolTip()
    assert actions["auto"].isChecked() and actions["fast"].isChecked()  # the choices are kept for a GPU
    # Named in an artist's words, alike; the precision each computes in is in its tooltip.
    assert [actions[v].text() for v in ("fast", "eager", "compile")] == [
        "Speed: &Fast", "Speed: &Standard", "Speed: Fastest (&Compiled)"]
    assert actions["fast"].isEnabled() and "bfloat16" in actions["fast"].toolTip()
    assert "CUDA graphs" not in actions["fast"].text()
    assert actions["eager"].isEnabled() and "float32" in actions["eager"].toolTip()
    actions["low"].trigger()  # off: nothing changes
    assert window.settings.memory == "auto"
    actions["eager"].trigger()
    assert window.settings.speed == "eager"
    assert window.status.message_label.text() == "Speed: Standard from the next job (full precision)."
    actions["fast"].trigger()
    assert window.status.message_label.text() == ("Speed: Fast from the next job (a little less exact where the "
                                                  "processor has bfloat16 units).")


def test_on_a_gpu_every_choice_applies_in_the_gpu_s_words(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: window.status.device_label.text().startswith("CPU"), timeout=WAIT_MS)
    menu = window.models.gpu_menu
    menu.show_device("cuda")
    assert not menu.device_action.isVisible()
    actions = {a.data(): a for a in menu.actions() if a.data()}
    assert all(action.isEnabled() for action in actions.values())
    assert [actions[v].text() for v in ("fast", "eager", "compile")] == [
        "Speed: &Fast", "Speed: &Standard", "Speed: Fastest (&Compiled)"]
    assert "CUDA graphs" in actions["fast"].toolTip() and "VRAM" in actions["auto"].toolTip()
    actions["low"].trigger()
    assert window.settings.memory == "low"
    assert window.status.message_label.text() == "GPU memory: Low VRAM — offload and tiling; slower, needs far less."


def test_the_menu_goes_by_the_engine_s_device_kind_not_its_words(qtbot, window) -> None:  # noqa: ANN001
    from studio.core.events import EngineStatus

    qtbot.waitUntil(lambda: window.models.gpu_menu.on_cpu, timeout=WAIT_MS)  # the real engine, on the CPU
    menu = window.models.gpu_menu
    window.handle_event(EngineStatus(device="CPU-class accelerator · float16", device_kind="cuda"))
    assert not menu.on_cpu and not menu.device_action.isVisible()
    window.handle_event(EngineStatus(message="Loading tiny-sd…"))  # no device in it: the menu stays as it is
    assert not menu.on_cpu
    window.handle_event(EngineStatus(device="Processor · 2 threads · float32", device_kind="cpu"))
    assert menu.on_cpu and menu.device_action.isVisible()
    assert window.status.device_label.text() == "Processor · 2 threads · float32"
