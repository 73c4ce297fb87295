"""The main window's menu bar and toolbars, built from the actions the window and its helpers made."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractButton, QDockWidget, QMenu, QToolBar

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

# The View menu's entries for the panels, with their Alt+letters (a panel's own title shows no "&").
PANEL_ENTRIES = {"dock-generate": "&Generate", "dock-queue": "&Queue", "dock-undo history": "&Undo History",
                 "dock-gallery": "Ga&llery"}


def explain_title_bar_buttons(dock: QDockWidget) -> None:
    """Tooltips on the panel's own float and close buttons, which Qt leaves without any (it names them only for
    screen readers). Qt makes them with the panel and keeps them; the float button's tip follows where it is."""
    title = dock.windowTitle()
    float_button = dock.findChild(QAbstractButton, "qt_dockwidget_floatbutton")
    close_button = dock.findChild(QAbstractButton, "qt_dockwidget_closebutton")
    if close_button is not None:
        close_button.setToolTip(f"Close the {title} panel (the View menu brings it back)")
    if float_button is None:
        return

    def float_tip(floating: bool) -> None:
        float_button.setToolTip(f"Put the {title} panel back in the main window" if floating
                                else f"Float the {title} panel in a window of its own")

    float_tip(dock.isFloating())
    dock.topLevelChanged.connect(float_tip)


def _panel_toggles(window: MainWindow) -> list[QAction]:
    toggles = []
    for dock in window.findChildren(QDockWidget):
        toggle = dock.toggleViewAction()
        toggle.setText(PANEL_ENTRIES.get(dock.objectName(), toggle.text()))
        toggles.append(toggle)
    return toggles


def build_menus_and_toolbars(window: MainWindow) -> None:
    a = window.actions_
    menus = {
        "&File": [a.open, a.save, None, a.open_mask, a.save_mask, None, window.outputs_action, None,
                  window.quit_action],
        "&Edit": [a.undo, a.redo, None, a.copy, a.copy_masked, a.paste, None, window.find_action],
        "&Image": [a.extend, a.scale],
        "Filte&rs": window.plugin_actions.menu,
        "&Mask": [window.mask_toolbar.show_mask_action, None, a.invert_mask, a.clear_mask,
                  window.mask_toolbar.grow_action, window.mask_toolbar.shrink_action],
        "&Generate": [window.generate_action, window.cancel_action, window.cancel_all_action, None,
                      window.results.use_held_action],
        "&View": [window.zoom_in_action, window.zoom_out_action, window.fit_action, window.actual_size_action, None,
                  *_panel_toggles(window)],
        "&Settings": [window.models.folder_action, window.models.library_action, window.models.gpu_menu.menuAction(),
                      window.memory.models_action, window.memory.free_action, None, window.plugin_actions.manage],
        "&Help": [window.about_action],
    }
    for title, actions in menus.items():
        if isinstance(actions, QMenu):
            window.menuBar().addMenu(actions)
            continue
        menu = window.menuBar().addMenu(title)
        for action in actions:
            menu.addSeparator() if action is None else menu.addAction(action)

    toolbar = QToolBar("Main")
    toolbar.setObjectName("mainToolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    for action in (a.open, a.save, None, a.undo, a.redo, None, window.generate_action, window.cancel_action,
                   window.cancel_all_action, None, a.extend, None, window.zoom_out_action, window.zoom_in_action,
                   window.fit_action, window.actual_size_action):
        toolbar.addSeparator() if action is None else toolbar.addAction(action)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    window.addToolBarBreak()
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, window.mask_toolbar)
