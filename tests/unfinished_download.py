"""A hub download stopped half-way, as a cancel (or a crash) leaves it: for the tests of what lists, resumes and
deletes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo

from studio.core.errors import JobCancelledError
from studio.services.download_progress import DownloadProgress
from studio.services.model_downloads import download_model, plan_download

REPO = "tester/tiny-vae"
WEIGHTS = "diffusion_pytorch_model.safetensors"


def vae_files() -> dict[str, bytes]:
    header = b'{"w": {"dtype": "F32", "shape": [50000], "data_offsets": [0, 200000]}}'
    return {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
            WEIGHTS: len(header).to_bytes(8, "little") + header + bytes(200_000)}


def vae_hub(delay: float = 0.001) -> FakeHub:
    """The hub of REPO, sending 4 KB at a time ``delay`` seconds apart."""
    return FakeHub({REPO: FakeRepo(vae_files(), sha="2" * 40)}, chunk=4096, delay=delay)


def stop_half_way(hub: FakeHub, models_dir: Path) -> int:
    """Download REPO into ``models_dir`` and cancel it once 40 KB of its weights are in; its total size."""
    plan = plan_download(REPO, models_dir, endpoint=hub.url)
    events: list[DownloadProgress] = []
    with pytest.raises(JobCancelledError):
        download_model(plan, progress=events.append, endpoint=hub.url,
                       cancelled=lambda: bool(events) and events[-1].file == WEIGHTS and events[-1].file_done >= 40_000)
    return plan.total_bytes
