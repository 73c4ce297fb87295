"""Style Weights: which weight files the style filters need, which are there, and importing one from a file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError
from studio.core.style_weights import WEIGHTS, WeightsFile, style_weights_dir
from studio.ui.dialog_room import keep_rows_in_sight, keep_wrapped_text_whole
from studio.ui.modal import modal
from studio.ui.tasks import Tasks
from studio.ui.theme import icon

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class StyleWeightsDialog(QDialog):
    def __init__(self, env: GeneratorEnvironment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env = env
        self.folder = style_weights_dir(env)
        self.ask_convert: Callable[[str], bool] = self._ask_convert  # tests answer for the person
        self._tasks = Tasks()
        self.setWindowTitle("Style Weights")
        self.resize(860, 280)
        layout = QVBoxLayout(self)
        intro = QLabel(f"Neural and fast style transfer need these weight files in {self.folder}. "
                       "Import each from the file you downloaded: a .safetensors file is checked and copied; a "
                       "PyTorch checkpoint (.pth) is converted to safetensors first, reading tensors only.")
        intro.setWordWrap(True)
        intro.setObjectName("hintLabel")
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # its path is copied as it is:
        layout.addWidget(intro)  # no breakable_path here, whose zero-width spaces a copy would carry
        self.table = QTableWidget(len(WEIGHTS), 5)
        self.table.setHorizontalHeaderLabels(["File", "Used by", "Made from", "Status", ""])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        layout.addWidget(self.table, 1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.message)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.reload()
        keep_rows_in_sight(self.table)
        keep_wrapped_text_whole(self, intro, self.message, chars=60)

    def reload(self) -> None:
        for row, weights in enumerate(WEIGHTS):
            path = self.folder / weights.name
            name = QTableWidgetItem(weights.name)
            name.setToolTip(f"From {weights.source}: {weights.original}")
            status = f"installed, {path.stat().st_size / 2**20:.0f} MiB" if path.is_file() else "missing"
            origin = QTableWidgetItem(weights.original)
            origin.setToolTip(f"{weights.original}, from {weights.source}")
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, QTableWidgetItem(weights.used_by))
            self.table.setItem(row, 2, origin)
            self.table.setItem(row, 3, QTableWidgetItem(status))
            button = QPushButton(icon("open"), "Import…")
            button.clicked.connect(lambda _=False, w=weights: self._choose(w))
            self.table.setCellWidget(row, 4, button)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)

    def _choose(self, weights: WeightsFile) -> None:
        name, _ = QFileDialog.getOpenFileName(self, f"Import {weights.name}", "",
                                              "Weights (*.safetensors *.pth *.pt *.ckpt *.bin)")
        if name:
            self._tasks.run(self.import_file(weights.name, Path(name)))

    def _ask_convert(self, file_name: str) -> bool:
        answer = QMessageBox.question(
            self, "Convert Checkpoint", f"{file_name} is a PyTorch checkpoint. Convert it to safetensors? Studio "
            "reads it with torch.load(weights_only=True), which takes tensors only and refuses code.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    async def import_file(self, name: str, source: Path) -> bool:
        """Check (and, if asked, convert) ``source`` off the UI thread, then put it in place as ``name``."""
        convert = source.suffix.lower() in PICKLE_SUFFIXES
        if convert and not await modal(lambda: self.ask_convert(source.name)):
            return False
        self.message.setText(f"Checking {source.name}…")
        try:
            dest = await asyncio.to_thread(_import, self.env, name, source, convert)
        except StudioError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText(f"Installed {dest}.")
        self.reload()
        return True


def _import(env: GeneratorEnvironment, name: str, source: Path, convert: bool) -> Path:
    from studio.engine.style.install import import_weights  # imports torch: here, off the UI thread

    return import_weights(env, name, source, convert)
