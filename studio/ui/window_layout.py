"""The window as the person left it: its size and place, its panels, and the brush and mask tools' settings,
kept in the settings file (``WindowLayout``) and put back at the next start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDockWidget

from studio.core.settings_sections import WindowLayout

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

DEFAULT_SIZE = QSize(1440, 900)
SCREEN_SHARE = 0.9  # a first window leaves room for the task bar and the screen's edges
FLOATING_DOCK_SIZE = QSize(320, 360)  # the least a panel floated out of the window opens at


def first_size(window: MainWindow) -> QSize:
    """1440×900, or less on a smaller screen (1366×768 laptops): the status bar must not start off-screen."""
    screen = window.screen()
    if screen is None:
        return DEFAULT_SIZE
    room = screen.availableGeometry().size()
    return QSize(min(DEFAULT_SIZE.width(), int(room.width() * SCREEN_SHARE)),
                 min(DEFAULT_SIZE.height(), int(room.height() * SCREEN_SHARE)))


def capture_layout(window: MainWindow) -> WindowLayout:
    canvas, tools = window.canvas, window.mask_toolbar
    return WindowLayout(
        geometry=bytes(window.saveGeometry().toBase64()).decode("ascii"),
        docks=bytes(window.saveState().toBase64()).decode("ascii"),
        brush_size=canvas.brush_size, brush_hardness=canvas.brush_hardness,
        mask_color=canvas.overlay.color.name(), mask_opacity=canvas.overlay.overlay_opacity,
        grow_pixels=tools.grow_spin.value())


def restore_layout(window: MainWindow, layout: WindowLayout) -> None:
    """The saved layout, or the first size for the screen; a saved value out of range is brought into it.
    A panel floated now or later opens big enough to use (``give_floated_dock_room``)."""
    for dock in window.findChildren(QDockWidget):
        dock.topLevelChanged.connect(lambda floating, dock=dock: floating and give_floated_dock_room(dock))
    if not window.restoreGeometry(_saved(layout.geometry)):
        window.resize(first_size(window))
    window.restoreState(_saved(layout.docks))  # an empty or foreign one is refused, and changes nothing
    canvas, tools = window.canvas, window.mask_toolbar
    canvas.set_brush(size=layout.brush_size, hardness=layout.brush_hardness)  # set_brush clamps
    color = QColor(layout.mask_color)
    canvas.overlay.set_style(color if color.isValid() else canvas.overlay.color, layout.mask_opacity)
    spin = tools.grow_spin  # clamped here: a spin box clamps too, but raises for a number past a C int
    tools.grow_spin.setValue(min(max(layout.grow_pixels, spin.minimum()), spin.maximum()))
    tools.sync_from_canvas()


def give_floated_dock_room(dock: QDockWidget) -> None:
    """A floated panel keeps the size it had in the window: one tabbed behind another was never laid out there
    and floated at about 100×104 px (Undo History). It grows to what its contents want, at least
    FLOATING_DOCK_SIZE and at most a share of the screen; a larger size the person gave it stays."""
    wanted = dock.sizeHint().expandedTo(FLOATING_DOCK_SIZE)
    if (screen := dock.screen()) is not None:
        room = screen.availableGeometry().size()
        wanted = wanted.boundedTo(QSize(int(room.width() * SCREEN_SHARE), int(room.height() * SCREEN_SHARE)))
    if dock.width() < wanted.width() or dock.height() < wanted.height():
        dock.resize(dock.size().expandedTo(wanted))


def _saved(text: str) -> QByteArray:
    """A saved layout's bytes; empty for text that is not base64 (a hand-edited settings file)."""
    try:
        return QByteArray.fromBase64(text.encode("ascii"))
    except UnicodeEncodeError:
        return QByteArray()
