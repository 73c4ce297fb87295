"""request_for_entry's sentence for a model that is gone: one shape for the window and the command line, the
model's name first and its path last (the window's status line cuts a long sentence off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import InvalidRequest
from studio.services.history_reuse import request_for_entry
from studio.services.history_store import HistoryEntry


def _refusal(entry: HistoryEntry, label: str | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        request_for_entry(entry, label=label)
    return str(caught.value)


def test_a_gone_model_is_said_by_its_name_first_and_its_path_last(tmp_path: Path):
    gone = tmp_path / "models" / "dreamy-v2.safetensors"
    entry = HistoryEntry("a fox", model_name="Dreamy v2", model_path=str(gone), id=3)
    assert _refusal(entry) == f"The model Dreamy v2 is gone, so history entry 3 cannot be run again; {gone} no " \
                              "longer exists."
    assert _refusal(entry, "the picture “a fox”") == f"The model Dreamy v2 is gone, so the picture “a fox” cannot be " \
                                                    f"run again; {gone} no longer exists."


@pytest.mark.parametrize(("file_name", "said"), [("dreamy-v2.safetensors", "dreamy-v2"), ("sd-1.5", "sd-1.5")])
def test_a_gone_model_without_a_recorded_name_is_named_by_its_file_or_folder(tmp_path: Path, file_name: str,
                                                                            said: str):
    gone = tmp_path / file_name  # a checkpoint file loses its extension; a diffusers folder keeps all its name
    entry = HistoryEntry("a fox", model_path=str(gone), id=3)
    assert _refusal(entry) == f"The model {said} is gone, so history entry 3 cannot be run again; {gone} no longer " \
                              "exists."
