"""The window as the person left it comes back at the next start; a first window fits the screen."""

from __future__ import annotations

from PySide6.QtCore import Qt

from PySide6.QtWidgets import QDockWidget, QWidget
from studio_testing import next_start_window

from studio.core.paths import studio_paths
from studio.core.settings import load_settings


def _next_start(qtbot):  # noqa: ANN001, ANN202
    return next_start_window(qtbot)


def test_size_panels_brush_and_mask_tools_come_back_at_the_next_start(qtbot, window):  # noqa: ANN001
    window.resize(780, 640)  # within the offscreen screen (800x800): Qt brings a restored window onto its screen
    window.findChild(QDockWidget, "dock-queue").hide()
    window.canvas.set_brush(size=120, hardness=0.3)
    window.canvas.overlay.set_style("#22cc88", 0.8)
    window.mask_toolbar.grow_spin.setValue(20)
    qtbot.wait(50)
    window.close()

    again = _next_start(qtbot)
    again.show()
    assert (again.width(), again.height()) == (window.width(), 640)
    assert again.findChild(QDockWidget, "dock-queue").isHidden()
    assert not again.findChild(QDockWidget, "dock-generate").isHidden()
    assert (again.canvas.brush_size, again.canvas.brush_hardness) == (120, 0.3)
    assert again.canvas.overlay.color.name() == "#22cc88" and abs(again.canvas.overlay.overlay_opacity - 0.8) < 1e-6
    assert again.mask_toolbar.grow_spin.value() == 20 and again.mask_toolbar.size_spin.value() == 120


def test_a_first_window_fits_the_screen_and_bad_saved_values_are_brought_into_range(qtbot, studio_home, qt_loop):  # noqa: ANN001
    first = _next_start(qtbot)
    room = first.screen().availableGeometry()
    assert first.width() <= room.width() and first.height() <= room.height()  # the offscreen screen: 800x800

    from studio.core.settings_writing import save_settings

    settings = load_settings()
    settings.window = settings.window.model_copy(update={
        "geometry": "not base64 at all", "brush_size": 1e9, "brush_hardness": -3, "mask_color": "mauve-ish",
        "grow_pixels": 99999999999})  # past a C int: the spin box raised instead of clamping
    save_settings(settings)
    odd = _next_start(qtbot)
    assert odd.width() <= room.width()
    # Past the tools' limits: each takes the nearest they allow, and the window says which.
    assert (odd.canvas.brush_size, odd.canvas.brush_hardness, odd.mask_toolbar.grow_spin.value()) == (1024, 0, 256)
    assert odd.status.message_label.text().startswith(
        "The setting window.brush_size was 1e+09, more than 1024; 1024 is used. The setting window.brush_hardness "
        "was -3, less than 0; 0 is used. The setting window.grow_pixels was 99999999999, more than 256; 256 is used.")


def test_a_narrow_window_shows_the_tool_bars_overflow_arrow(qtbot, window):  # noqa: ANN001
    from PySide6.QtWidgets import QWidget

    window.resize(900, 640)
    qtbot.wait(200)
    [extension] = [c for c in window.mask_toolbar.findChildren(QWidget)
                   if c.metaObject().className() == "QToolBarExtension"]
    assert extension.isVisible()
    picture = extension.grab().toImage()
    colours = {picture.pixel(x, y) for x in range(picture.width()) for y in range(picture.height())}
    assert len(colours) > 2  # an arrow is drawn (the padding of tool buttons left it a blank 12 px strip)


def test_a_laptop_sized_window_leaves_the_canvas_room_and_the_size_menu_sets_sizes(qtbot, window):  # noqa: ANN001
    window.resize(1024, 640)
    qtbot.wait(200)
    assert window.prompt_panel.size_box.minimumSizeHint().width() <= 340  # the size drop-down made it 445
    assert window.canvas.width() >= 300
    sizes = window.prompt_panel.size_box
    [portrait] = [a for a in sizes.presets.menu().actions() if a.text() == "832 × 1216"]
    portrait.trigger()
    assert (sizes.width_spin.value(), sizes.height_spin.value()) == (832, 1216)


def test_a_hand_edited_settings_file_starts_studio_and_the_window_says_what_was_set_aside(qtbot, studio_home,  # noqa: ANN001
                                                                                        qt_loop):
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text('[window]\ngeometry = "géométrie"\ngrow_pixels = 2.5\n\n'
                                   '[[styles]]\nname = "Ink"\nprompt = "ink {prompt}"\n', encoding="utf-8")
    window = _next_start(qtbot)
    assert window.settings.styles[0].name == "Ink"  # kept
    assert window.status.message_label.text().startswith("Some settings could not be read (window.grow_pixels)")
    assert window.mask_toolbar.grow_spin.value() == 8


def test_the_generate_panel_fits_its_dock_and_a_first_mask_scrolls_it_only_down(qtbot, window):  # noqa: ANN001
    from PIL import Image

    from studio.core.mask import fill_rect

    scroll = window.prompt_panel._scroll
    window.document.set_image(Image.new("RGB", (96, 64)), "Open")
    window.document.edit_mask("A", lambda m: fill_rect(m, (8, 8, 40, 40)))
    qtbot.waitUntil(lambda: window.prompt_panel.inpaint_box.isVisible(), timeout=3000)
    qtbot.wait(100)
    assert scroll.widget().width() <= scroll.viewport().width()  # nothing cut off at the right
    assert scroll.horizontalScrollBar().value() == 0 and scroll.verticalScrollBar().value() > 0


def test_a_narrow_window_or_a_dragged_dock_never_cuts_the_generate_panel_s_rows_off(qtbot, window):  # noqa: ANN001
    """The window as small as it goes (a screen 800 px wide opened it at its least width, 856 px) squeezes the docks
    to their least widths: the Generate panel's is its widest row's, so the canvas gives way instead."""
    scroll, panel = window.prompt_panel._scroll, window.prompt_panel
    generate = next(d for d in window.findChildren(QDockWidget) if d.windowTitle() == "Generate")
    window.resizeDocks([generate], [200], Qt.Orientation.Horizontal)  # dragged as narrow as it will go
    window.resize(400, 720)  # the window's own least width wins
    qtbot.wait(200)
    body = scroll.widget()
    assert body.width() >= body.minimumSizeHint().width() and body.width() <= scroll.viewport().width()
    panel.control_box.add()  # a guide card
    wider = QWidget()  # a row wider than the dock is now (a guide card alone is not, at the least width)
    wider.setMinimumWidth(panel.width() + 80)
    body.layout().addWidget(wider)
    qtbot.wait(200)
    assert scroll.widget().width() <= scroll.viewport().width()  # a row added later widens the dock with it
    assert generate.width() >= wider.minimumWidth()


def test_the_view_menu_hides_and_shows_each_panel(qtbot, window):  # noqa: ANN001
    from PySide6.QtWidgets import QDockWidget

    docks = {dock.windowTitle(): dock for dock in window.findChildren(QDockWidget)}
    assert set(docks) == {"Generate", "Queue", "Gallery", "Undo History"}
    queue = docks["Queue"]
    action = queue.toggleViewAction()
    assert action.isEnabled()
    action.trigger()
    assert not queue.isVisible()
    action.trigger()
    assert queue.isVisible()


def test_each_panel_s_float_and_close_buttons_say_what_they_do(qtbot, window):  # noqa: ANN001
    """Qt's own buttons on a panel's title bar had no tooltip: two bare icons."""
    from PySide6.QtWidgets import QAbstractButton

    for dock in window.findChildren(QDockWidget):
        title = dock.windowTitle()
        close = dock.findChild(QAbstractButton, "qt_dockwidget_closebutton")
        assert close.toolTip() == f"Close the {title} panel (the View menu brings it back)"
        assert dock.findChild(QAbstractButton, "qt_dockwidget_floatbutton").toolTip() == (
            f"Float the {title} panel in a window of its own")
    gallery = window.findChild(QDockWidget, "dock-gallery")
    float_button = gallery.findChild(QAbstractButton, "qt_dockwidget_floatbutton")
    float_button.click()  # the button itself, as the person clicks it
    qtbot.waitUntil(gallery.isFloating, timeout=2000)
    assert float_button.toolTip() == "Put the Gallery panel back in the main window"
    float_button.click()
    qtbot.waitUntil(lambda: not gallery.isFloating(), timeout=2000)
    assert float_button.toolTip() == "Float the Gallery panel in a window of its own"


def test_a_floated_panel_opens_big_enough_to_use(qtbot, window):  # noqa: ANN001
    """Undo History, tabbed behind the Gallery, floated at about 100x104 px: its docked size, never laid out."""
    history = window.findChild(QDockWidget, "dock-undo history")
    gallery = window.findChild(QDockWidget, "dock-gallery")
    history.setFloating(True)
    qtbot.waitUntil(history.isFloating, timeout=2000)
    assert history.width() >= 300 and history.height() >= 300, history.size()
    tall = gallery.height()
    gallery.setFloating(True)
    qtbot.waitUntil(gallery.isFloating, timeout=2000)
    assert gallery.height() >= tall  # a bigger size from the window is kept, not shrunk
    assert gallery.width() >= 300
    history.setFloating(False)
    qtbot.waitUntil(lambda: not history.isFloating(), timeout=2000)


def test_at_1280_by_720_the_queue_shows_three_rows_at_first_start(qtbot, window):  # noqa: ANN001
    """The Gallery took all but one and a half rows of the Queue at 1280×720."""
    window.resize(1280, 720)
    queue = window.queue_panel.list
    three_rows = 3 * (2 * queue.fontMetrics().lineSpacing() + 16)  # two lines and a row's padding and border
    qtbot.waitUntil(lambda: queue.viewport().height() >= three_rows)
    assert window.minimumSizeHint().height() <= 600  # and a 1024×600 screen still takes the window
