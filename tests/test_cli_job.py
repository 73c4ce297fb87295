"""How ``studio generate`` follows its job on the terminal (studio.cli_job): run on Studio's job service with a
quick stand-in for the diffusers generator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from studio_testing import three_pictures_of_which_one_was_written

import studio.cli_generate as cli_generate
from studio.cli_exit import EXIT_FAILED
from studio.core.environment import GeneratorEnvironment
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.plugin_host.registry import GENERATOR, Contribution, Registry


class FailsOnSecondPicture:
    """Stands in for the diffusers generator: a flat picture for the first seed, then an error."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def generate(self, request: GenerationRequest, context: Any  # noqa: ANN401 - the engine's JobContext
                 ) -> Iterator[tuple[Image.Image, Recipe]]:
        seed = request.seed_for(0)
        context.report_progress(request.steps, request.steps, 0)
        yield Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0)), Recipe(
            request.prompt, request.negative_prompt, request.steps, request.scheduler, request.cfg_scale, seed,
            request.width, request.height, "quick")
        raise RuntimeError("the GPU fell over")


@pytest.fixture
def failing_engine(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Failing generator", f"{__name__}:FailsOnSecondPicture"))
    monkeypatch.setattr(cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))


def test_a_batch_that_fails_part_way_says_which_pictures_it_wrote(failing_engine, tiny_model_dir, tmp_path,
                                                                  capsys):
    # The first picture was written to -o, but the command said only the failure: nobody knew it was there.
    code, said, first = three_pictures_of_which_one_was_written(tiny_model_dir, tmp_path, capsys)
    assert code == EXIT_FAILED
    err = said.err.splitlines()
    failure = next(line for line in err if "the GPU fell over" in line)
    wrote = f"studio: failed after 1 of 3 pictures; wrote {first}."
    assert wrote in err and err.index(failure) < err.index(wrote)
