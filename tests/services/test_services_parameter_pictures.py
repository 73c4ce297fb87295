"""The picture parameters of plugin generators and chain steps: kept as control pictures are (one file per distinct
picture in the outputs' sources folder), named by the history, used again by a rerun, refused by one when gone or
never kept, and removed with the last entry that uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from plugin_wheels import plugin_wheel
from studio_testing import collect_until_done, make_env, run, running_service, terminal, unpack_plugin

from studio.core.errors import InvalidRequest
from studio.core.events import JobFinished
from studio.core.images import open_image, pixel_digest
from studio.core.requests import GenerationRequest, PostStep
from studio.plugin_host.host import PluginHost
from studio.services.history_reuse import request_for_entry
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.services.outputs import OutputStore, is_kept_control

PAINTER = '''
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        source = request.params["source"]
        colour = (128, 128, 128) if source is None else source.convert("RGB").getpixel((0, 0))
        for _ in range(request.batch_count):
            yield Image.new("RGB", (request.width, request.height), colour)


class Stamp:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        result = image.copy()
        result.paste(params["reference"].convert("RGB").getpixel((0, 0)), (0, 0, 4, 4))
        return result
'''

PAINTER_MANIFEST = '''
[[generators.parameters]]
name = "source"
type = "image"
optional = true

[[postprocessors]]
id = "tp-paint-stamp"
title = "Stamp"
target = "{package}.generator:Stamp"

[[postprocessors.parameters]]
name = "reference"
type = "image"
'''

BLUE, RED = (0, 0, 255), (255, 0, 0)


@pytest.fixture
def painted(plugin_sandbox, tmp_path: Path) -> dict:  # noqa: ANN001
    """One job of the painter: its source a file read by the window (a picture, no path), its chain step's picture
    the canvas; recorded in a history. The file is deleted after."""
    package = "studio_tp_paint"
    wheel = plugin_wheel(tmp_path / "wheels", plugin_id="tp-paint", package=package, generator_id="tp-paint-gen",
                         generator_code=PAINTER, manifest_extra=PAINTER_MANIFEST.format(package=package))
    unpack_plugin(tmp_path / "plugins", wheel, "tp-paint")
    host = PluginHost(tmp_path / "plugins", scan_environment=False)
    host.refresh()
    host.set_enabled("tp-paint", True)
    blue = tmp_path / "blue.png"
    Image.new("RGB", (10, 8), BLUE).save(blue)
    canvas = Image.new("RGB", (12, 12), RED)
    store = HistoryStore(tmp_path / "history.db")
    setup = {"host": host, "env": make_env(tmp_path), "outputs": OutputStore(tmp_path / "outputs"), "store": store}
    asked = GenerationRequest(model="", prompt="painted", width=64, height=64, seed=3, generator="tp-paint-gen",
                              params={"source": open_image(blue)},
                              post=(PostStep("tp-paint-stamp", {"reference": canvas}),))
    (finished,) = submit(setup, asked)
    blue.unlink()  # the person's file goes: the history has its own copy
    setup.update(finished=finished, entry=store.search()[0], canvas=canvas)
    yield setup
    store.close()


def submit(setup: dict, *requests: GenerationRequest) -> list:
    async def scenario():  # noqa: ANN202
        async with running_service(setup["env"], outputs=setup["outputs"], history=setup["store"],
                                   plugins=setup["host"]) as service:
            stream = service.subscribe()
            ids = [service.submit(r) for r in requests]
            return await collect_until_done(stream, ids), ids

    events, ids = run(scenario())
    return [terminal(events, job) for job in ids]


def kept_pictures(entry: HistoryEntry) -> tuple[str, str]:
    return entry.params["generator_params"]["source"], entry.params["post"][0]["params"]["reference"]


def test_the_history_names_kept_copies_of_the_generator_s_and_the_step_s_pictures(painted):
    source, reference = kept_pictures(painted["entry"])
    assert is_kept_control(source) and is_kept_control(reference)
    assert open_image(source).getpixel((0, 0)) == BLUE and open_image(reference).getpixel((0, 0)) == RED
    assert painted["canvas"].info == {}  # the person's picture is not marked
    output = painted["finished"].outputs[0]
    assert output.image.getpixel((0, 0)) == RED and output.image.getpixel((10, 10)) == BLUE


def test_the_kept_copies_are_named_pictures_not_control_pictures(painted):
    """They guide no ControlNet: "<digest>-control.png" said they did."""
    source, reference = (Path(p) for p in kept_pictures(painted["entry"]))
    assert source.name == f"{pixel_digest(open_image(source))}-picture.png" and source.parent.name == "sources"
    assert reference.name == f"{pixel_digest(painted['canvas'])}-picture.png"
    assert list(source.parent.glob("*-control.png")) == []


def test_an_entry_whose_copies_have_the_old_control_names_still_runs_again_and_removes_them(painted):
    store, entry = painted["store"], painted["entry"]
    old_names = []
    for new in (Path(p) for p in kept_pictures(entry)):
        old = new.with_name(new.name.replace("-picture.png", "-control.png"))
        new.rename(old)
        old_names.append(str(old))
    entry.params["generator_params"]["source"], entry.params["post"][0]["params"]["reference"] = old_names
    store.delete(entry.id, remove_files=False)
    store.add(entry)  # as an older Studio recorded it
    (entry,) = store.search()
    rerun = request_for_entry(entry)
    assert rerun.params["source"] == old_names[0]
    (finished,) = submit(painted, rerun)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    assert finished.outputs[0].image.getpixel((0, 0)) == RED and finished.outputs[0].image.getpixel((10, 10)) == BLUE
    assert list(kept_pictures(store.search()[0])) == old_names  # named again, not kept a second time
    for row in store.search():
        store.delete(row.id)
    assert not any(Path(p).exists() for p in old_names)  # still Studio's to remove


def test_a_rerun_passes_the_same_pictures_though_the_person_s_file_is_gone(painted):
    rerun = request_for_entry(painted["entry"])
    assert rerun.params["source"] == kept_pictures(painted["entry"])[0]  # not None: the picture, from its copy
    (finished,) = submit(painted, rerun)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    image = finished.outputs[0].image
    assert image.getpixel((0, 0)) == RED and image.getpixel((10, 10)) == BLUE  # the same picture again
    again = painted["store"].search()[0]
    assert again.id != painted["entry"].id and kept_pictures(again) == kept_pictures(painted["entry"])


def test_a_rerun_whose_kept_picture_is_gone_is_refused_naming_the_parameter(painted):
    source, reference = kept_pictures(painted["entry"])
    Path(reference).unlink()
    with pytest.raises(InvalidRequest, match=r"^The picture of its 'tp-paint-stamp' step's parameter 'reference' is "
                                             r"gone, so history entry \d+ cannot be run again"):
        request_for_entry(painted["entry"])
    Path(source).unlink()
    with pytest.raises(InvalidRequest, match="its generator's parameter 'source' is gone"):
        request_for_entry(painted["entry"])


def test_a_rerun_of_an_entry_that_only_noted_its_picture_says_it_was_not_kept(painted):
    old = painted["entry"]
    old.params["generator_params"]["source"] = "<picture 10x8>"
    with pytest.raises(InvalidRequest, match=r"^The picture of its generator's parameter 'source' was not kept, so "
                                             r"history entry \d+ cannot be run again\.$"):
        request_for_entry(old)
    old.params["generator_params"] = {}
    old.params["post"][0]["params"]["reference"] = "<picture 12x12>"
    with pytest.raises(InvalidRequest, match="step's parameter 'reference' was not kept"):
        request_for_entry(old)


def test_the_kept_pictures_go_with_the_last_entry_that_uses_them(painted):
    store = painted["store"]
    (finished,) = submit(painted, request_for_entry(painted["entry"]))
    assert isinstance(finished, JobFinished)
    first, second = sorted(e.id for e in store.search())
    kept = [Path(p) for p in kept_pictures(painted["entry"])]
    store.delete(first)
    assert all(p.is_file() for p in kept)  # the rerun's entry still uses them
    store.delete(second)
    assert not any(p.exists() for p in kept)


def test_load_parameters_sets_the_chain_step_with_its_kept_picture_and_says_when_it_is_gone(painted, tmp_path):
    from studio.services.history_reuse import usable_chain

    records, registry = painted["entry"].params["post"], painted["host"].registry
    reference = kept_pictures(painted["entry"])[1]
    chain = usable_chain(records, registry, tmp_path)
    assert [s.params for s in chain.steps] == [{"reference": reference}] and chain.notes == []  # not "not kept"
    Path(reference).unlink()
    assert usable_chain(records, registry, tmp_path).notes == [
        f"Its Stamp step's picture {reference} is gone; choose another for it in the post-processing chain."]


def test_a_kept_picture_removed_while_a_job_names_it_is_written_again_under_its_own_name(tmp_path):
    outputs = OutputStore(tmp_path / "outputs")
    picture = Image.new("RGB", (6, 4), BLUE)
    kept = outputs.save_parameter_picture(picture)
    kept.unlink()
    outputs.restore_control(picture, kept)
    assert kept.is_file() and [p.name for p in kept.parent.iterdir()] == [kept.name]
