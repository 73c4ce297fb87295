"""Plugin generators and post-processors through the real job service and engine thread: outputs and
history, parameters, the after-each-generation chain, and isolation of plugins that fail, raise or hang."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from plugin_wheels import plugin_wheel
from studio_testing import collect_until_done, make_env, run, running_service, terminal, unpack_plugin

from studio.core.errors import InvalidRequest
from studio.core.events import EngineStatus, JobCancelled, JobFailed, JobFinished, JobProgress
from studio.core.images import read_recipe
from studio.core.requests import GenerationRequest, PostProcessRequest, PostStep
from studio.plugin_host import guard
from studio.plugin_host.host import ENABLED, FAILED, PluginHost
from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryStore
from studio.services.outputs import OutputStore

GENERATOR = '''
import time
from PIL import Image


class Generator:
    def __init__(self, env):
        self.env = env

    def generate(self, request, context):
        assert context.data_dir == self.env.data_dir and context.data_dir.is_dir()
        mode = request.params["mode"]
        if mode == "refuse":
            from studio.plugin_api import InvalidRequest
            raise InvalidRequest("This pattern needs a square picture.")
        if mode == "reuse":  # one picture object, changed for every result (a plugin's own buffer)
            buffer = Image.new("RGB", (request.width, request.height))
            for i in range(request.batch_count):
                buffer.paste((50 * (i + 1), 0, 0), (0, 0, request.width, request.height))
                yield buffer
            return
        if mode == "junk":  # not a picture, then it carries on as if nothing happened
            yield "not a picture"
            for step in range(1, 30):
                time.sleep(0.01)
                context.report_progress(step, 30, 0)
            return
        for i in range(request.batch_count):
            if mode == "raise" and i == 1:
                raise RuntimeError("kaput")
            if mode == "hang":
                for _ in range(300):  # ignores cancel on purpose, for 3 s (so no thread outlives the tests)
                    time.sleep(0.01)
                return
            for step in range(1, 4):
                context.check_cancelled()
                if mode == "slow":
                    time.sleep(0.2)
                context.report_progress(step, 3, i, preview=Image.new("RGB", (8, 8)))
            colour = (request.params["level"], request.seed_for(i) % 256, 0)
            yield Image.new("RGB", (request.width, request.height), colour)


class Invert:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        if params["amount"] < 0.01:
            raise ValueError("amount too small to see")
        if params["amount"] == 0.02:  # slow, and stops when cancelled
            context.report_progress(1, 99)
            for _ in range(500):
                context.check_cancelled()
                time.sleep(0.01)
        context.report_progress(1, 1)
        inverted = Image.eval(image, lambda v: 255 - v)
        image.paste((1, 2, 3), (0, 0, image.width, image.height))  # scribbles on the picture it was given
        return inverted
'''

MANIFEST_EXTRA = '''
[[generators.parameters]]
name = "level"
type = "int"
default = 200
min = 0
max = 255

[[generators.parameters]]
name = "mode"
type = "choice"
choices = ["fine", "raise", "hang", "slow", "refuse", "reuse", "junk"]

[[postprocessors]]
id = "tp-invert"
title = "Invert"
target = "{package}.generator:Invert"

[[postprocessors.parameters]]
name = "amount"
type = "float"
default = 1.0
min = 0.0
max = 1.0

[[postprocessors.parameters]]
name = "noise"
type = "seed"
'''


@pytest.fixture
def setup(plugin_sandbox, tmp_path):
    plugins_dir = tmp_path / "plugins"
    for plugin_id, package in (("tp-good", "studio_tp_good"), ("tp-other", "studio_tp_other")):
        wheel = plugin_wheel(tmp_path / "wheels" / plugin_id, plugin_id=plugin_id, package=package,
                             generator_id=plugin_id + "-gen", generator_code=GENERATOR,
                             manifest_extra=MANIFEST_EXTRA.format(package=package).replace(
                                 "tp-invert", plugin_id + "-invert"), version="2.1.0")
        unpack_plugin(plugins_dir, wheel, plugin_id)
    broken = plugin_wheel(tmp_path / "wheels" / "broken", plugin_id="tp-broken", package="studio_tp_broken",
                          generator_id="tp-broken-gen", generator_code="raise ImportError('needs libfoo')")
    unpack_plugin(plugins_dir, broken, "tp-broken")
    host = PluginHost(plugins_dir, scan_environment=False)
    host.refresh()
    for plugin_id in ("tp-good", "tp-other", "tp-broken"):
        host.set_enabled(plugin_id, True)
    history = HistoryStore(tmp_path / "history.db")
    yield host, make_env(tmp_path), OutputStore(tmp_path / "outputs"), history
    history.close()


def request(generator: str = "tp-good-gen", **kwargs) -> GenerationRequest:  # noqa: ANN003
    values = dict(model="", prompt="plugin test", width=96, height=64, seed=7, generator=generator)
    values.update(kwargs)
    return GenerationRequest(**values)


def submit_all(setup, requests, cancel_after: float | None = None):  # noqa: ANN001, ANN201
    host, env, outputs, history = setup

    async def scenario():
        async with running_service(env, outputs=outputs, history=history, plugins=host) as service:
            stream = service.subscribe()
            ids = [service.submit(r) for r in requests]
            if cancel_after is not None:
                import asyncio

                await asyncio.sleep(cancel_after)
                service.cancel(ids[0])
            return await collect_until_done(stream, ids), ids

    return run(scenario())


def test_a_plugin_generator_runs_like_any_job_and_lands_in_the_history(setup):
    host, _, _, history = setup
    events, (job,) = submit_all(setup, [request(batch_count=2, params={"level": "17"},
                                                post=(PostStep("tp-good-invert", {"amount": 1}),))])
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    # Each picture: three steps, then its post-processing step, reported as that picture's.
    progress = [(p.image_index, p.step) for p in events if isinstance(p, JobProgress)]
    assert progress == [(0, 1), (0, 2), (0, 3), (0, 1), (1, 1), (1, 2), (1, 3), (1, 1)]
    first = finished.outputs[0]
    # Level 17 (given as text, checked by the schema), seed 7, then inverted by the post-processor.
    assert first.image.getpixel((0, 0)) == (255 - 17, 255 - 7, 255)
    assert finished.outputs[1].image.getpixel((0, 0)) == (255 - 17, 255 - 8, 255)
    recipe = read_recipe(first.path)
    assert (recipe.plugin, recipe.generator, recipe.generator_version, recipe.params) == \
        ("tp-good", "tp-good-gen", "2.1.0", {"level": 17, "mode": "fine"})
    (step,) = recipe.post
    assert (step["processor"], step["version"], step["params"]["amount"]) == ("tp-good-invert", "2.1.0", 1.0)
    assert 0 <= step["params"]["noise"] <= 2**32 - 1  # a random seed is fixed before the run, so it can be remade
    with Image.open(first.path) as saved:
        assert ("Generator: tp-good/tp-good-gen 2.1.0, Generator settings: \"level: 17, mode: fine\", "
                "Post-processing: tp-good-invert") in saved.info["parameters"]
    rows = history.search(HistoryQuery(text="plugin test"))
    assert {(r.generator, r.generator_version, r.outcome) for r in rows} == {("tp-good-gen", "2.1.0", "ok")}
    assert rows[0].params["generator_params"] == {"level": 17, "mode": "fine"}
    assert rows[0].params["plugin"] == "tp-good"
    assert rows[0].postprocess[0]["processor"] == "tp-good-invert"
    assert host.record("tp-good").failures == 0


def test_bad_parameters_are_refused_before_the_job_is_queued(setup):
    host, env, outputs, history = setup

    async def scenario():
        async with running_service(env, plugins=host) as service:
            for bad, message in (
                    ({"level": 300}, "Test generator: Level must be between 0 and 255, not 300."),
                    ({"nope": 1}, "Test generator has no parameter 'nope'; its parameters are: level, mode."),
                    ({"mode": "loud"},
                     "Test generator: Mode must be one of fine, raise, hang, slow, refuse, reuse, junk, not 'loud'.")):
                with pytest.raises(InvalidRequest) as err:
                    service.submit(request(params=bad))
                assert str(err.value) == message
            with pytest.raises(InvalidRequest, match="No post-processor called 'ghost'"):
                service.submit(request(post=(PostStep("ghost"),)))
            assert service.waiting() == []

    run(scenario())


def test_import_errors_and_exceptions_fail_only_their_own_job_then_switch_the_plugin_off(setup):
    host, _, _, history = setup
    broken = [request("tp-broken-gen") for _ in range(3)]
    events, ids = submit_all(setup, [*broken, request("tp-other-gen"), request(params={"mode": "raise"},
                                                                               batch_count=2)])
    messages = [terminal(events, j).message for j in ids[:3]]
    assert messages[0] == ("The generator 'Test generator' from Test Plugin could not be loaded "
                           "(ImportError: needs libfoo).")
    assert messages[2].endswith("The plugin Test Plugin was switched off until Studio restarts because it failed "
                                "3 times; turn it on again in Plugins when it is fixed.")
    assert any(isinstance(e, EngineStatus) and "switched off" in e.message for e in events)
    assert host.record("tp-broken").status == FAILED
    # The other plugin is fine; a plugin raising mid-job keeps the picture it made.
    assert isinstance(terminal(events, ids[3]), JobFinished)
    raised = terminal(events, ids[4])
    assert isinstance(raised, JobFailed) and raised.message == "The plugin Test Plugin failed (RuntimeError: kaput)."
    assert len(raised.outputs) == 1 and raised.outputs[0].path.is_file()
    assert host.record("tp-good").status == ENABLED and host.record("tp-good").failures == 1
    outcomes = sorted(r.outcome for r in history.search(HistoryQuery(text="plugin test")))
    assert outcomes == ["failed", "failed", "failed", "failed", "ok", "ok"]  # the raising job: 1 made, then why not 2


def test_a_plugin_that_ignores_cancel_is_abandoned_after_the_grace_period(setup, monkeypatch):
    # The job ended failed and the plugin was switched off "because it stopped responding": the person's cancel
    # was counted as the plugin's failure (and the command line said so, then exited 1 for a Ctrl+C).
    monkeypatch.setattr(guard, "CANCEL_GRACE_SECONDS", 0.5)
    host = setup[0]
    events, ids = submit_all(setup, [request(params={"mode": "hang"}), request("tp-other-gen")], cancel_after=0.5)
    hung = terminal(events, ids[0])
    assert isinstance(hung, JobCancelled)
    assert hung.notes == ("The plugin Test Plugin did not stop within 0.5 s of being cancelled; Studio stopped "
                          "waiting for it.",)
    assert not any(isinstance(e, EngineStatus) and "switched off" in e.message for e in events)
    assert (host.record("tp-good").status, host.record("tp-good").failures) == (ENABLED, 0)
    assert isinstance(terminal(events, ids[1]), JobFinished)  # the engine thread lived on
    # A second hang leaves a second thread behind: now the plugin is switched off for the session, and said.
    events, ids = submit_all(setup, [request(params={"mode": "hang"})], cancel_after=0.5)
    assert terminal(events, ids[0]).notes[0].endswith("because it did not stop after being cancelled 2 times; "
                                                      "turn it on again in Plugins when it is fixed.")
    assert any(isinstance(e, EngineStatus) and "switched off" in e.message for e in events)
    assert host.record("tp-good").status == FAILED


def test_a_plugin_that_honours_cancel_is_cancelled(setup):
    events, (job,) = submit_all(setup, [request(params={"mode": "slow"}, batch_count=3)], cancel_after=0.3)
    assert isinstance(terminal(events, job), JobCancelled)
    assert setup[0].record("tp-good").failures == 0


def test_a_failing_post_step_keeps_the_generated_picture(setup):
    events, (job,) = submit_all(setup, [request(post=(PostStep("tp-good-invert", {"amount": 0}),))])
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished)
    assert finished.outputs[0].image.getpixel((0, 0)) == (200, 7, 0)  # not inverted, not lost
    # Said as a problem, before "Finished in …" (among the notes after it, the status line cut it off).
    failed = ("The plugin Test Plugin failed (ValueError: amount too small to see). The picture was kept without "
              "Invert.",)  # the filter's name, as its menu shows it
    assert (finished.warnings, finished.notes) == (failed, ())
    assert read_recipe(finished.outputs[0].path).post == ()
    history = setup[3]
    (row,) = history.search(HistoryQuery(text="plugin test"))
    assert row.params["notes"] == list(failed)  # and the history keeps it with the picture


def test_a_cancel_during_a_post_step_still_saves_and_records_the_picture_without_the_steps(setup):
    host, env, outputs, history = setup
    slow = PostStep("tp-good-invert", {"amount": 0.02})

    async def scenario():
        async with running_service(env, outputs=outputs, history=history, plugins=host) as service:
            stream = service.subscribe()
            job = service.submit(request(post=(slow, PostStep("tp-good-invert", {"amount": 1}))))

            def cancel_in_the_step(event: object) -> None:
                if isinstance(event, JobProgress) and event.total == 99:
                    service.cancel(job)

            return await collect_until_done(stream, [job], on_event=cancel_in_the_step), job

    events, job = run(scenario())
    cancelled = terminal(events, job)
    assert isinstance(cancelled, JobCancelled) and len(cancelled.outputs) == 1
    kept = cancelled.outputs[0]
    assert kept.path.is_file() and kept.image.getpixel((0, 0)) == (200, 7, 0)  # as generated: neither step ran
    assert read_recipe(kept.path).post == ()
    assert [r.outcome for r in history.search(HistoryQuery(text="plugin test"))] == ["ok"]


def test_post_processing_a_picture_as_its_own_job(setup):
    picture = Image.fromarray(np.full((20, 30, 3), 10, np.uint8))
    events, (job,) = submit_all(setup, [PostProcessRequest("tp-good-invert", picture, {"amount": "0.5"})])
    finished = terminal(events, job)
    (output,) = finished.outputs
    assert output.path is None  # a canvas edit: not saved, not in the history
    assert output.image.getpixel((0, 0)) == (245, 245, 245)
    assert output.recipe.post[0]["params"]["amount"] == 0.5
    assert json.loads(output.recipe.to_json())["post"][0]["processor"] == "tp-good-invert"


def test_a_plugin_refusing_the_input_is_not_counted_as_its_failure(setup):
    host = setup[0]
    events, ids = submit_all(setup, [request(params={"mode": "refuse"}) for _ in range(4)])
    assert {terminal(events, j).message for j in ids} == {"This pattern needs a square picture."}
    assert host.record("tp-good").status == ENABLED and host.record("tp-good").failures == 0


def test_a_plugin_never_changes_the_picture_it_is_given_nor_one_it_handed_over(setup):
    picture = Image.fromarray(np.full((20, 30, 3), 10, np.uint8))
    events, (post, reused) = submit_all(setup, [PostProcessRequest("tp-good-invert", picture, {"amount": "0.5"}),
                                                request(params={"mode": "reuse"}, batch_count=3)])
    assert picture.getpixel((0, 0)) == (10, 10, 10)  # the canvas picture is the person's, not the plugin's
    assert terminal(events, post).outputs[0].image.getpixel((0, 0)) == (245, 245, 245)
    finished = terminal(events, reused)
    assert [o.image.getpixel((0, 0)) for o in finished.outputs] == [(50, 0, 0), (100, 0, 0), (150, 0, 0)]
    assert [Image.open(o.path).getpixel((0, 0)) for o in finished.outputs] == [(50, 0, 0), (100, 0, 0), (150, 0, 0)]


def test_results_that_are_not_pictures_count_as_failures_and_stop_the_plugin(setup):
    host = setup[0]
    events, ids = submit_all(setup, [*(request(params={"mode": "junk"}) for _ in range(3)), request("tp-other-gen")])
    messages = [terminal(events, j).message for j in ids[:3]]
    assert messages[0] == "The plugin Test Plugin returned str instead of a picture."
    assert "was switched off until Studio restarts because it failed 3 times" in messages[2]
    assert host.record("tp-good").status == FAILED
    # What it says after its job failed is dropped: no progress of a dead job beside the next one's.
    assert not [e for e in events if isinstance(e, JobProgress) and e.job_id in ids[:3]]
    assert isinstance(terminal(events, ids[3]), JobFinished)


def own_plugin(tmp_path, plugin_id: str, code: str, manifest_extra: str = "") -> tuple:  # noqa: ANN001
    """A setup (host, env, outputs, history) holding one enabled plugin with ``code`` as its generator module."""
    package = "studio_tp_" + plugin_id.replace("-", "_")
    wheel = plugin_wheel(tmp_path / "wheels" / plugin_id, plugin_id=plugin_id, package=package,
                         generator_id=plugin_id + "-gen", generator_code=code,
                         manifest_extra=manifest_extra.format(package=package, plugin_id=plugin_id))
    unpack_plugin(tmp_path / "plugins", wheel, plugin_id)
    host = PluginHost(tmp_path / "plugins", scan_environment=False)
    host.refresh()
    host.set_enabled(plugin_id, True)
    return host, make_env(tmp_path), OutputStore(tmp_path / "outputs"), None


SCRIBBLER = '''
from PIL import Image, ImageDraw


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        reference = request.params["reference"]
        ImageDraw.Draw(reference).rectangle((0, 0, reference.width, reference.height), fill=(255, 0, 0))
        yield Image.new("RGB", (request.width, request.height), reference.getpixel((0, 0)))


class Post:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        params["reference"].paste((0, 255, 0), (0, 0, 4, 4))
        return image.copy()
'''

SCRIBBLER_MANIFEST = '''
[[generators.parameters]]
name = "reference"
type = "image"

[[postprocessors]]
id = "{plugin_id}-post"
title = "Scribbler"
target = "{package}.generator:Post"

[[postprocessors.parameters]]
name = "reference"
type = "image"
'''


def test_a_plugin_never_changes_a_picture_given_as_a_parameter(plugin_sandbox, tmp_path):
    setup = own_plugin(tmp_path, "tp-scribble", SCRIBBLER, SCRIBBLER_MANIFEST)
    canvas = Image.new("RGB", (8, 8), (200, 200, 200))  # the canvas picture, chosen as the reference
    events, ids = submit_all(setup, [request("tp-scribble-gen", params={"reference": canvas}),
                                     PostProcessRequest("tp-scribble-post", canvas, {"reference": canvas})])
    assert all(isinstance(terminal(events, j), JobFinished) for j in ids)
    assert canvas.getpixel((0, 0)) == (200, 200, 200)  # the person's picture (and its undo history) is untouched
    assert terminal(events, ids[0]).outputs[0].image.getpixel((0, 0)) == (255, 0, 0)  # it drew on its own copy


def test_submit_neither_copies_nor_converts_a_generator_s_picture_on_the_calling_thread(plugin_sandbox, tmp_path,
                                                                                        monkeypatch):
    """Submit copied a plugin generator's picture parameter (and converted one not RGB) on the window's thread:
    40-100 ms at 4096². The engine thread now makes the plugin's own copy; the person's pictures are untouched
    by the plugin drawing on it, the recipe notes the picture as before and the history names its kept copy."""
    import threading

    host, env, outputs, _ = own_plugin(tmp_path, "tp-scribble", SCRIBBLER, SCRIBBLER_MANIFEST)
    history = HistoryStore(tmp_path / "history.db")
    canvas = Image.new("RGB", (8, 8), (200, 200, 200))
    grey = Image.new("L", (6, 4), 90)  # drawn on in red by the plugin: only works once converted to RGB
    given = {id(canvas), id(grey)}
    caller = threading.current_thread()
    on_caller: list[str] = []
    for name in ("copy", "convert", "getchannel"):
        def spy(self, *args, _original=getattr(Image.Image, name), _name=name, **kwargs):  # noqa: ANN001, ANN202
            if id(self) in given and threading.current_thread() is caller:
                on_caller.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Image.Image, name, spy)
    events, ids = submit_all((host, env, outputs, history), [
        request("tp-scribble-gen", params={"reference": picture}) for picture in (canvas, grey)])
    assert on_caller == []
    for job, noted in zip(ids, ("<picture 8x8>", "<picture 6x4>")):
        finished = terminal(events, job)
        assert isinstance(finished, JobFinished), getattr(finished, "message", "")
        assert finished.outputs[0].image.getpixel((0, 0)) == (255, 0, 0)  # it drew on its own RGB copy
        assert read_recipe(finished.outputs[0].path).params == {"reference": noted}
    assert canvas.getpixel((0, 0)) == (200, 200, 200) and canvas.mode == "RGB"  # the person's, as they were
    assert grey.getpixel((0, 0)) == 90 and grey.mode == "L"
    rows = history.search(HistoryQuery(text="plugin test"))  # the history names the copies it kept of them
    kept = sorted(Image.open(r.params["generator_params"]["reference"]).size for r in rows)
    assert kept == [(6, 4), (8, 8)]
    history.close()


RUNAWAY = '''
import time
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):  # never looks at the cancel, never stops by itself
        while True:
            time.sleep(request.params["pause"])
            yield Image.new("RGB", (request.width, request.height), (9, 9, 9))
'''

RUNAWAY_MANIFEST = '''
[[generators.parameters]]
name = "pause"
type = "float"
default = 0.0
'''


def test_a_generator_yielding_without_end_is_capped_at_the_batch_and_stopped_by_a_cancel(plugin_sandbox, tmp_path):
    setup = own_plugin(tmp_path, "tp-runaway", RUNAWAY, RUNAWAY_MANIFEST)
    events, ids = submit_all(setup, [request("tp-runaway-gen", batch_count=2),
                                     request("tp-runaway-gen", batch_count=2)])
    for job in ids:  # the first job ended, so the next one ran
        finished = terminal(events, job)
        assert isinstance(finished, JobFinished) and len(finished.outputs) == 2
        assert finished.notes == ("The plugin Test Plugin made more than the 2 pictures asked for; Studio kept the "
                                  "first 2 and stopped it.",)
    assert len(list((tmp_path / "outputs").rglob("*.png"))) == 4
    events, (job,) = submit_all(setup, [request("tp-runaway-gen", batch_count=100, params={"pause": 0.02})],
                                cancel_after=0.3)
    cancelled = terminal(events, job)
    assert isinstance(cancelled, JobCancelled) and len(cancelled.outputs) < 50  # stopped at its next picture
    assert setup[0].record("tp-runaway").failures == 0


def test_a_rerun_is_refused_when_its_generator_id_now_belongs_to_another_plugin(setup):
    from studio.services.history_reuse import request_for_entry

    host, env, _, history = setup
    events, (job,) = submit_all(setup, [request()])
    assert isinstance(terminal(events, job), JobFinished)
    (entry,) = history.search(HistoryQuery(text="plugin test"))
    rerun = request_for_entry(entry)
    assert (rerun.generator, rerun.plugin) == ("tp-good-gen", "tp-good")

    async def scenario():
        async with running_service(env, plugins=host) as service:
            service.submit(rerun)  # the plugin that made it: fine
            with pytest.raises(InvalidRequest) as err:  # as if another plugin had the id now
                service.submit(replace(rerun, plugin="tp-other"))
            return str(err.value)

    assert run(scenario()) == ("This was made by the generator 'tp-good-gen' of the plugin tp-other, but that id now "
                               "belongs to Test Plugin, which would make something else; enable tp-other (and "
                               "disable Test Plugin) to make it again.")


BROKEN_FILE = '''
import io
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):  # a picture read lazily from a file cut short: it fails when loaded
        data = io.BytesIO()
        Image.effect_noise((request.width, request.height), 50).convert("RGB").save(data, "PNG")
        yield Image.open(io.BytesIO(data.getvalue()[: len(data.getvalue()) // 2]))
'''


def test_a_broken_lazily_loaded_picture_is_the_plugin_s_failure_with_its_name(plugin_sandbox, tmp_path):
    setup = own_plugin(tmp_path, "tp-lazy", BROKEN_FILE)
    events, (job,) = submit_all(setup, [request("tp-lazy-gen")])
    failed = terminal(events, job)
    assert isinstance(failed, JobFailed)
    assert failed.message.startswith("The plugin Test Plugin failed (OSError: image file is truncated")
    assert setup[0].record("tp-lazy").failures == 1  # counted: three would switch it off


def test_a_restyle_step_with_no_model_in_the_chain_uses_the_generations_model():
    """Added in the chain dialog, Restyle's model was empty, and every generation failed with "Diffusion restyle
    needs a model" though a model was picked. An upscaler's empty model (the first one there) is left alone."""
    from studio.plugin_host.registry import builtin_registry
    from studio.services.plugin_jobs import check_plugin_inputs

    asked = request("diffusers", model="/models/tiny-sd", post=(
        PostStep("restyle", {"model": " "}), PostStep("restyle", {"model": "other"}), PostStep("upscale", {})))
    restyle, own, upscale = check_plugin_inputs(builtin_registry(), asked).post
    assert (restyle.params["model"], own.params["model"], upscale.params["model"]) == ("/models/tiny-sd", "other", "")



def test_chain_pictures_are_only_checked_to_exist_at_submit(tmp_path, monkeypatch):
    """Submitting decoded every chain step's reference on the window's thread (a 4096² file: 0.7 s a step). Now
    the file is only checked to exist (and be readable); the engine thread reads it."""
    import studio.core.images as images
    from studio.plugin_host.registry import builtin_registry
    from studio.services.plugin_jobs import check_plugin_inputs

    there = tmp_path / "there.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(there)
    opened = []
    monkeypatch.setattr(images, "open_image", lambda *a, **k: opened.append(a) or Image.new("RGB", (8, 8)))
    (step,) = check_plugin_inputs(builtin_registry(), request("diffusers", post=(
        PostStep("histogram", {"style": str(there)}),))).post
    assert step.params["style"] == str(there.resolve()) and not opened
    with pytest.raises(InvalidRequest, match="does not exist"):
        check_plugin_inputs(builtin_registry(), PostProcessRequest("color", Image.new("RGB", (8, 8)),
                                                                   {"style": str(tmp_path / "gone.png")}, None))


def test_a_chain_step_whose_picture_file_is_gone_is_left_out_with_a_note(tmp_path):
    """A deleted reference refused every Generate. The step is left out with a note, the others run; a filter run
    on its own is still refused for it."""
    from studio.plugin_host.registry import builtin_registry
    from studio.services.plugin_jobs import check_plugin_inputs

    there, gone = tmp_path / "there.png", str(tmp_path / "gone.png")
    Image.new("RGB", (8, 8), (200, 30, 30)).save(there)
    notes: list[str] = []
    asked = request("diffusers", post=(PostStep("color", {"style": gone}),
                                       PostStep("histogram", {"style": str(there)})))
    (step,) = check_plugin_inputs(builtin_registry(), asked, notes).post
    assert step.processor == "histogram"
    assert notes == [f"Colour Transfer: Style picture: the picture {gone} does not exist. That step was left out: "
                     "choose another picture for it in the post-processing chain."]
    with pytest.raises(InvalidRequest, match="does not exist"):
        check_plugin_inputs(builtin_registry(), asked)  # no notes to say it in: refused


STAMPER = '''
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        for _ in range(request.batch_count):
            yield Image.new("RGB", (request.width, request.height), (128, 128, 128))


class Post:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        result = Image.new("RGB", image.size, params["reference"].getpixel((0, 0)))
        params["reference"].paste((255, 0, 0), (0, 0, 4, 4))  # it draws on what it was given
        return result
'''

STAMPER_MANIFEST = '''
[[postprocessors]]
id = "{plugin_id}-post"
title = "Stamper"
target = "{package}.generator:Post"

[[postprocessors.parameters]]
name = "reference"
type = "image"
'''


def test_a_chain_step_reads_its_picture_once_for_a_batch_and_each_picture_gets_its_own_copy(
        plugin_sandbox, tmp_path, monkeypatch):  # noqa: ANN001
    import studio.core.images

    host, env, outputs, _ = own_plugin(tmp_path, "tp-stamp", STAMPER, STAMPER_MANIFEST)
    reference = tmp_path / "reference.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).save(reference)
    reads: list[str] = []
    open_image = studio.core.images.open_image
    monkeypatch.setattr(studio.core.images, "open_image", lambda path, *a, **k: reads.append(str(path)) or
                        open_image(path, *a, **k))
    asked = request("tp-stamp-gen", batch_count=3, post=(PostStep("tp-stamp-post", {"reference": str(reference)}),))
    events, (job,) = submit_all((host, env, outputs, None), [asked])
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    assert [o.image.getpixel((0, 0)) for o in finished.outputs] == [(0, 0, 255)] * 3  # none saw another's drawing
    assert len(reads) == 1  # one read for the three pictures
    Image.new("RGB", (16, 16), (0, 255, 0)).save(reference)  # the file changed: the same request reads it again
    events, (job,) = submit_all((host, env, outputs, None), [asked])
    assert [o.image.getpixel((0, 0)) for o in terminal(events, job).outputs] == [(0, 255, 0)] * 3
    assert len(reads) == 2


def test_a_chain_step_s_pictures_are_let_go_with_its_request(tmp_path):
    import gc
    import weakref
    from types import SimpleNamespace

    from studio.core.parameters import ImageParam
    from studio.services.plugin_jobs import StepPictures

    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "style.png")
    contribution = SimpleNamespace(parameters=(ImageParam("style", "Style"),), title="Colour")
    pictures = StepPictures()
    step = PostStep("color", {"style": str(tmp_path / "style.png")})
    first, second = pictures.values(step, contribution)["style"], pictures.values(step, contribution)["style"]
    assert first is not second and first.getpixel((0, 0)) == second.getpixel((0, 0)) == (9, 9, 9)
    ((_step, _stamp, values),) = pictures._kept.values()
    kept = weakref.ref(values["style"])
    del step, first, second, _step, values
    gc.collect()
    assert kept() is None and not pictures._kept


def test_a_long_chain_s_steps_without_pictures_do_not_push_out_one_with_a_picture(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from studio.core.parameters import FloatParam, ImageParam
    from studio.services import plugin_jobs
    from studio.services.plugin_jobs import StepPictures

    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "style.png")
    reads: list[str] = []
    load = plugin_jobs.load_pictures
    monkeypatch.setattr(plugin_jobs, "load_pictures", lambda schema, values, owner: reads.append(owner) or
                        load(schema, values, owner))
    colour = SimpleNamespace(parameters=(ImageParam("style", "Style"),), title="Colour")
    blur = SimpleNamespace(parameters=(FloatParam("radius", "Radius"),), title="Blur")
    chain = [PostStep("color", {"style": str(tmp_path / "style.png")})]
    chain += [PostStep("blur", {"radius": 0.5}) for _ in range(StepPictures.KEPT_STEPS)]
    pictures = StepPictures()
    for _picture in range(3):  # a batch of three, each through the whole chain
        for step in chain:
            pictures.values(step, colour if step.processor == "color" else blur)
    assert reads.count("Colour") == 1


def test_each_step_of_a_chain_reads_its_picture_once_for_a_batch(plugin_sandbox, tmp_path, monkeypatch):  # noqa: ANN001
    import studio.core.images

    host, env, outputs, _ = own_plugin(tmp_path, "tp-stamp", STAMPER, STAMPER_MANIFEST)
    blue, green = tmp_path / "blue.png", tmp_path / "green.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).save(blue)
    Image.new("RGB", (16, 16), (0, 255, 0)).save(green)
    reads: list[str] = []
    open_image = studio.core.images.open_image
    monkeypatch.setattr(studio.core.images, "open_image", lambda path, *a, **k: reads.append(Path(path).name) or
                        open_image(path, *a, **k))
    chain = (PostStep("tp-stamp-post", {"reference": str(blue)}), PostStep("tp-stamp-post", {"reference": str(green)}))
    events, (job,) = submit_all((host, env, outputs, None), [request("tp-stamp-gen", batch_count=3, post=chain)])
    assert [o.image.getpixel((0, 0)) for o in terminal(events, job).outputs] == [(0, 255, 0)] * 3
    assert sorted(reads) == ["blue.png", "green.png"]  # one read a step, not one a step and picture


TIDIER = STAMPER.replace('        return result\n', '        params.clear()  # it tidies up what it was given\n'
                         '        return result\n')


def test_a_plugin_that_changes_its_parameters_dict_does_not_change_what_the_picture_records(
        plugin_sandbox, tmp_path):  # noqa: ANN001
    host, env, outputs, _ = own_plugin(tmp_path, "tp-tidy", TIDIER, STAMPER_MANIFEST)
    reference = tmp_path / "reference.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).save(reference)
    asked = request("tp-tidy-gen", batch_count=2, post=(PostStep("tp-tidy-post", {"reference": str(reference)}),))
    events, (job,) = submit_all((host, env, outputs, None), [asked])
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    assert [o.recipe.post[0]["params"] for o in finished.outputs] == [{"reference": "<picture 16x16>"}] * 2


def test_the_status_line_names_the_filter_running_on_each_picture(setup):
    events, (job,) = submit_all(setup, [request(batch_count=2, post=(PostStep("tp-good-invert", {"amount": 1}),))])
    assert isinstance(terminal(events, job), JobFinished)
    said = [e.message for e in events if isinstance(e, EngineStatus) and e.message.startswith("Invert")]
    assert said == ["Invert on picture 1 of 2…", "Invert on picture 2 of 2…"]


def test_a_blend_needing_more_than_the_free_memory_fails_with_a_sentence_not_counted_against_the_plugin(
        setup, monkeypatch):
    import psutil
    from types import SimpleNamespace

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=2**20))  # 1 MB free
    picture = Image.fromarray(np.full((200, 300, 3), 10, np.uint8))
    events, (blended, whole) = submit_all(setup, [
        PostProcessRequest("tp-good-invert", picture, {"amount": "0.5"}, strength=0.5),
        PostProcessRequest("tp-good-invert", picture, {"amount": "0.5"})])  # strength 1: nothing to blend
    assert terminal(events, blended).message.startswith("Blending the 300x200 result by the strength needs about")
    assert terminal(events, whole).outputs[0].image.getpixel((0, 0)) == (245, 245, 245)
    assert setup[0].record("tp-good").failures == 0


DEEP = '''
import numpy as np
from PIL import Image


class Post:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        ramp = np.linspace(0.0, 1.0, image.width, dtype=np.float64)[None, :].repeat(image.height, 0)
        if params["depth"] == "i16":
            return Image.fromarray((ramp * 65535).astype(np.uint16))  # I;16
        if params["depth"] == "i32":
            return Image.fromarray((ramp * 4000 - 1000).astype(np.int32))  # I
        return Image.fromarray((ramp * 0.5 + 0.25).astype(np.float32))  # F
'''

DEEP_MANIFEST = '''
[[postprocessors]]
id = "{plugin_id}-post"
title = "Deep"
target = "{package}.generator:Post"

[[postprocessors.parameters]]
name = "depth"
type = "choice"
choices = ["i16", "i32", "f"]
'''


def test_16_bit_32_bit_and_float_results_are_scaled_to_8_bits_with_a_note(plugin_sandbox, tmp_path):
    setup = own_plugin(tmp_path, "tp-deep", "", DEEP_MANIFEST)
    (tmp_path / "plugins" / "tp-deep" / "studio_tp_tp_deep" / "generator.py").write_text(DEEP)
    picture = Image.new("RGB", (256, 4), (9, 9, 9))
    events, ids = submit_all(setup, [PostProcessRequest("tp-deep-post", picture, {"depth": depth})
                                     for depth in ("i16", "i32", "f")])
    for job, kind in zip(ids, ("16-bit", "32-bit", "floating-point")):
        finished = terminal(events, job)
        image = finished.outputs[0].image
        assert image.mode == "RGB"
        # A ramp from black to white, not a white picture (Pillow's convert clips).
        assert image.getpixel((0, 0)) == (0, 0, 0) and image.getpixel((255, 0)) == (255, 255, 255)
        assert abs(image.getpixel((128, 2))[0] - 128) <= 2
        assert finished.notes == (f"The plugin Test Plugin returned a {kind} picture; Studio scaled it to 8 bits.",)


def test_each_plugin_job_is_logged_and_watched_while_its_code_runs(setup, caplog):
    import logging

    from studio.services.autosave import RunningPlugin

    host, env, outputs, history = setup
    seen: list[RunningPlugin | None] = []
    picture = Image.fromarray(np.full((20, 30, 3), 10, np.uint8))

    async def scenario():
        async with running_service(env, outputs=outputs, history=history, plugins=host) as service:
            service.watch_plugins(seen.append)
            stream = service.subscribe()
            ids = [service.submit(PostProcessRequest("tp-good-invert", picture, {"amount": "0.5"})),
                   service.submit(request(params={"mode": "raise"}, batch_count=2))]
            return await collect_until_done(stream, ids)

    with caplog.at_level(logging.INFO, logger="studio.services.plugin_jobs"):
        run(scenario())
    invert = RunningPlugin("tp-good", "Test Plugin", "2.1.0", "Invert")
    assert seen[:2] == [invert, None]  # marked before its code ran, cleared after
    assert seen[2] is not None and seen[2].title != "Invert" and seen[3:] == [None]  # cleared after a failure too
    assert "Running Invert (plugin Test Plugin 2.1.0)" in caplog.messages


def test_a_plugin_generator_is_marked_again_after_its_post_step_plugin_ran(setup):
    """The post-step plugin runs between the generator's pictures: when it is done, the generator (whose code
    makes the next picture) is the running plugin again, not nobody."""
    from studio.services.autosave import RunningPlugin

    host, env, outputs, history = setup
    seen: list[RunningPlugin | None] = []

    async def scenario():
        async with running_service(env, outputs=outputs, history=history, plugins=host) as service:
            service.watch_plugins(seen.append)
            stream = service.subscribe()
            ids = [service.submit(request(batch_count=2, post=(PostStep("tp-other-invert", {"amount": 1}),)))]
            return await collect_until_done(stream, ids), ids

    events, (job,) = run(scenario())
    assert isinstance(terminal(events, job), JobFinished)
    generator = seen[0]
    invert = RunningPlugin("tp-other", "Test Plugin", "2.1.0", "Invert")
    assert generator is not None and generator.plugin_id == "tp-good" and generator.title != "Invert"
    assert seen == [generator, invert, generator, invert, generator, None]
