"""The Model Library's downloads, said in the window's own words: a hub it cannot reach points to its Import button,
and a download stopped half-way is listed, to resume or delete."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hub_server import isolated_hub_client

from studio.core.settings import Settings


@pytest.fixture
def dialog(qtbot, qt_loop, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    from studio.ui.models_dialog import ModelsDialog

    with isolated_hub_client(tmp_path / "hf", monkeypatch):
        changes: list = []
        library = ModelsDialog(settings, tmp_path / "cache", changes.append)
        qtbot.addWidget(library)
        library.show()
        qtbot.waitUntil(lambda: library.message.text() == "" and library.tree.topLevelItemCount() > 0, timeout=10000)
        yield library
        library.done(0)


def test_an_unreachable_hub_points_to_the_import_button_not_a_command(qtbot, dialog, monkeypatch):  # noqa: ANN001
    # It said "... Import a file you already have with `studio models import PATH`." in the window.
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    dialog.start(dialog.download("tester/tiny-sd"))
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Could not reach"), timeout=20000)
    assert dialog.message.text() == (f"Could not reach the model hub at http://127.0.0.1:{port}; Studio may be "
                                     "offline. Use Import to add a file you already have.")
    assert dialog.import_button.text() == "Import"  # the button the sentence names
