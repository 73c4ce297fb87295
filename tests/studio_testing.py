"""Helpers shared by the engine and services tests: a running JobService, event collection, fakes.

Importable from every test module because tests/conftest.py puts this folder on sys.path.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.events import TERMINAL_EVENTS, JobEvent
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.plugin_host.host import PluginHost
from studio.plugin_host.registry import (
    GENERATOR,
    Contribution,
    Registry,
    builtin_registry,
)
from studio.services.history_store import HistoryStore
from studio.services.jobs import EventStream, JobService
from studio.services.outputs import OutputStore


def run_studio(home: Path, *args: str, timeout: float = 240, env: dict[str, str] | None = None,
               bound_by_permissions: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m studio ARGS`` in a subprocess with its own STUDIO_HOME, on the CPU, no terminal to ask on.
    ``bound_by_permissions``: run by a user file permissions bind, root too (see without_root_writes)."""
    full_env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8", **(env or {}))
    bound = bound_by_permissions and os.geteuid() == 0
    return subprocess.run([sys.executable, "-m", "studio", *args], env=full_env, cwd=home.parent, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout, stdin=subprocess.DEVNULL,
                          preexec_fn=without_root_writes if bound else None)


COMMANDS_SCRIPT = (
    "import contextlib, io, json, logging, sys\n"
    "from studio.cli import main\n"
    "root, results = logging.getLogger(), []\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    err, out, handlers = io.StringIO(), io.StringIO(), list(root.handlers)\n"
    "    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):\n"
    "        try:\n"
    "            code = main(args)\n"
    "        except SystemExit as exited:\n"
    "            code = exited.code if isinstance(exited.code, int) else int(exited.code is not None)\n"
    "    for handler in [h for h in root.handlers if h not in handlers]:\n"
    "        root.removeHandler(handler)\n"
    "        handler.close()\n"
    "    results.append([code, out.getvalue(), err.getvalue()])\n"
    "with open(sys.argv[2], 'w', encoding='utf-8') as file:\n"
    "    json.dump(results, file)\n"
)


def run_studio_commands(home: Path, *commands: list[str], timeout: float = 240, env: dict[str, str] | None = None,
                        bound_by_permissions: bool = False) -> list[subprocess.CompletedProcess[str]]:
    """Each ``studio ARGS`` of ``commands`` through ``studio.cli.main``, one after another in one fresh Python run
    as run_studio runs it (its own STUDIO_HOME, the CPU, ``env``, ``bound_by_permissions``): for a test that runs
    commands one after another with nothing done between them, one start of Python (and import of torch and
    diffusers) instead of one a command. Each command's exit status and what it printed, as run_studio's result."""
    import json
    import tempfile

    full_env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8", **(env or {}))
    bound = bound_by_permissions and os.geteuid() == 0
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results.json"
        done = subprocess.run([sys.executable, "-c", COMMANDS_SCRIPT, json.dumps(commands), str(results)],
                              env=full_env, cwd=home.parent, capture_output=True, text=True, encoding="utf-8",
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              preexec_fn=without_root_writes if bound else None)
        assert done.returncode == 0 and results.is_file(), done.stderr
        assert done.stdout == "", f"printed past its command's capture: {done.stdout!r}"
        said = json.loads(results.read_text(encoding="utf-8"))
    return [subprocess.CompletedProcess(["studio", *args], code, out, err)
            for args, (code, out, err) in zip(commands, said, strict=True)]


def studio_here(capsys, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001 - pytest's capsys
    """``studio ARGS`` through ``studio.cli.main`` in this process, as run_studio's result (exit status, what it
    printed): the STUDIO_HOME the test set (studio_home, or monkeypatch), on the CPU, without the 3-5 s a fresh
    Python takes to import torch and diffusers. For what a command does, not how its process starts or ends
    (run_studio's). The log file the command opens is closed after it, so no test's log gets another's lines."""
    import logging

    from studio.cli import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    capsys.readouterr()  # what the test printed before is not the command's
    try:
        code = main(list(args))
    except SystemExit as exited:  # argparse's errors and --help end so
        code = exited.code if isinstance(exited.code, int) else int(exited.code is not None)
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    said = capsys.readouterr()
    return subprocess.CompletedProcess(["studio", *args], code, said.out, said.err)


def sigint_as_at_a_terminal() -> None:
    """A ``preexec_fn`` for a child a test sends Ctrl+C (SIGINT): it takes it as one started at a terminal does.
    Where pytest itself was started with SIGINT ignored (a ``&`` job of a shell without job control), a child
    inherits that, Python then sets no KeyboardInterrupt handler, and the test's SIGINT would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def ctrl_c_as_at_a_terminal() -> Iterator[None]:
    """In this process, SIGINT raises KeyboardInterrupt (which asyncio.run turns into a cancel) as in a Python
    started at a terminal, also where pytest was started with SIGINT ignored; what was there is put back after."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)


def without_root_writes() -> None:
    """In the child, before it runs Python: root gives up writing past file permissions (CAP_DAC_OVERRIDE leaves
    the bounding set, so the new program never has it), and a read-only folder is read-only to it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override = 24, 1
    if libc.prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


def why_root_cannot_give_up_writes() -> str | None:
    """Why without_root_writes would fail here, or None: a container without CAP_SETPCAP refuses the drop, and
    raising in preexec_fn fails the test rather than skipping it. Tried in a child of its own, which it cannot
    harm."""
    if os.geteuid() != 0:
        return None
    tried = subprocess.run(
        [sys.executable, "-c", "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
         "sys.exit(0 if libc.prctl(24, 1, 0, 0, 0) == 0 else os.strerror(ctypes.get_errno()))"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if tried.returncode == 0:
        return None
    return (f"root cannot give up writing past file permissions here (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE): "
            f"{tried.stderr.strip() or tried.returncode}), so no folder is read-only to it")


HELP_LOADS_TORCH = ("import sys\nfrom studio.cli import main\ntry:\n    main(sys.argv[1:])\n"
                    "except SystemExit:\n    print('torch' in sys.modules)\n")


def help_in_a_fresh_process(home: Path, *args: str) -> tuple[str, str]:
    """What ``studio ARGS`` (a --help) prints in a fresh Python, on one line and ending in whether torch was
    imported ("True"/"False"), and its stderr."""
    env = dict(os.environ, STUDIO_HOME=str(home), PYTHONIOENCODING="utf-8")
    done = subprocess.run([sys.executable, "-c", HELP_LOADS_TORCH, *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    return " ".join(done.stdout.split()), done.stderr


def three_pictures_of_which_one_was_written(tiny_model_dir: Path, tmp_path: Path, capsys, *extra: str  # noqa: ANN001
                                            ) -> tuple[int, object, Path]:
    """``studio generate`` of a batch of three foxes (seed 4) to ``tmp_path/fox.png`` that ends after its first
    picture (how: ``extra`` arguments, or a generator put in place): only fox-1.png written, with its recipe, and
    said. The exit status, what was printed (capsys's), and that first picture's path."""
    from studio.cli import main
    from studio.core.images import read_recipe

    code = main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "64x64", "--seed", "4",
                 "--batch-count", "3", *extra, "-o", str(tmp_path / "fox.png")])
    said = capsys.readouterr()
    first = tmp_path / "fox-1.png"
    assert sorted(path.name for path in tmp_path.glob("fox*")) == ["fox-1.png"]
    assert read_recipe(first).seed == 4
    assert f"Saved {first} (seed 4, 64x64)" in said.out.splitlines()
    return code, said, first


class DirectContext:
    """The JobContext of a job run directly on a generator (no worker thread): records what it is told."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.statuses: list[dict] = []
        self.previews = 0
        self.wants_previews = True

    def report_progress(self, step: int, total: int, image_index: int = 0, preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        self.previews += preview is not None

    def is_cancelled(self) -> bool:
        return False

    def check_cancelled(self) -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)

    def status(self, **kwargs: str) -> None:
        self.statuses.append(kwargs)


# Long enough for a slow CI machine, short enough that a hang fails the test quickly.
EVENT_TIMEOUT = 60.0


def tiny_request(model: Path, *, prepared: bool = False, **kwargs) -> GenerationRequest:  # noqa: ANN003
    """A quick job for the tiny pipelines: 64x64, 2 steps with CFG, seed 1, Euler; ``kwargs`` change any field.
    ``prepared``: as the engine receives it (``prepare_request``: checked and normalised)."""
    from studio.core.requests import prepare_request

    values = dict(model=str(model), prompt="a red fox, snow", negative_prompt="blurry", width=64, height=64,
                  steps=2, cfg_scale=5.0, seed=1, scheduler="Euler")
    values.update(kwargs)
    request = GenerationRequest(**values)
    return prepare_request(request).request if prepared else request


def make_env(root: Path, device: str = "cpu") -> GeneratorEnvironment:
    return GeneratorEnvironment(device=device, data_dir=root / "data", cache_dir=root / "cache")


@asynccontextmanager
async def running_service(env: GeneratorEnvironment, registry: Registry | None = None,
                          outputs: OutputStore | None = None, warm_up: bool = False,
                          history: HistoryStore | None = None,
                          plugins: PluginHost | None = None) -> AsyncIterator[JobService]:
    """A started JobService on the running loop; shut down (and checked stopped) on exit."""
    if registry is None and plugins is None:
        registry = builtin_registry()
    service = JobService(registry, env, outputs=outputs, warm_up=warm_up, history=history, plugins=plugins)
    service.start()
    try:
        yield service
    finally:
        assert service.shutdown(timeout=30), "the engine thread did not stop"


async def collect_until_done(stream: EventStream, job_ids: Iterable[int], timeout: float = EVENT_TIMEOUT,
                             on_event: Callable[[object], None] | None = None) -> list[object]:
    """Every event from stream until each of job_ids has had its terminal event."""
    pending = set(job_ids)
    events: list[object] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            events.append(event)
            if on_event is not None:
                on_event(event)
            if isinstance(event, TERMINAL_EVENTS):
                pending.discard(event.job_id)
            if not pending:
                break
    return events


def of_job(events: list[object], job_id: int, kind: type | tuple[type, ...] = JobEvent) -> list:
    return [e for e in events if isinstance(e, kind) and getattr(e, "job_id", None) == job_id]


def terminal(events: list[object], job_id: int) -> JobEvent:
    found = of_job(events, job_id, TERMINAL_EVENTS)
    assert len(found) == 1, f"job {job_id} should end exactly once, got {found}"
    return found[0]


def run(coro, timeout: float = 2 * EVENT_TIMEOUT):  # noqa: ANN001, ANN201
    """asyncio.run with an overall time limit, so a hang fails instead of blocking the suite."""

    async def guarded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(guarded())


# -- a fake generator, registered like a plugin's, for fast and fully controlled service tests ------

class GatedGenerator:
    """Reports step 1, then waits until ``release`` is set (or the job is cancelled), then step 2.

    Each image is a flat colour whose red channel is the seed modulo 256.
    """

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env
        self.release = threading.Event()
        self.threads: list[str] = []
        self.started: list[int] = []  # seeds of the requests it began, in order

    def generate(self, request: GenerationRequest, context) -> Iterable[tuple[Image.Image, Recipe]]:  # noqa: ANN001
        self.threads.append(threading.current_thread().name)
        self.started.append(request.seed)
        for index in range(request.batch_count):
            seed = request.seed_for(index)
            context.report_progress(1, 2, index, Image.new("RGB", (8, 8)))
            while not self.release.wait(0.01):
                context.check_cancelled()
            context.check_cancelled()
            context.report_progress(2, 2, index)
            image = Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0))
            yield image, Recipe(request.prompt, request.negative_prompt, request.steps, request.scheduler,
                                request.cfg_scale, seed, request.width, request.height, "gated",
                                generator=request.generator)


class FailingGenerator:
    """Raises on every job: a plugin with a bug."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def generate(self, request: GenerationRequest, context):  # noqa: ANN001, ANN201
        raise KeyError("no such layer")


class WaitsForCancelFilter:
    """A post-processor that reports step 1 of 99, then waits until its job is cancelled."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def process(self, image: Image.Image, params, context) -> Image.Image:  # noqa: ANN001
        context.report_progress(1, 99)
        while True:
            context.check_cancelled()
            threading.Event().wait(0.01)


class ControlRecordingGenerator:
    """Stands in for Studio's diffusers generator (registered as "diffusers", so a job keeps its control guides):
    records the requests it is given and, as the engine does, each guide in its picture's recipe, with the hash
    "c0ffee". A prompt of "fail" fails the job before any picture."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest, context) -> Iterable[tuple[Image.Image, Recipe]]:  # noqa: ANN001
        self.requests.append(request)
        if request.prompt == "fail":
            raise RuntimeError("the ControlNet did not load")
        for index in range(request.batch_count):
            seed = request.seed_for(index)
            yield Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0)), Recipe(
                request.prompt, request.negative_prompt, request.steps, request.scheduler, request.cfg_scale, seed,
                request.width, request.height, "controlled", controls=tuple(g.to_record("c0ffee")
                                                                            for g in request.controls))


def control_registry() -> Registry:
    """A registry whose "diffusers" generator is ControlRecordingGenerator."""
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Control-recording generator",
                              "studio_testing:ControlRecordingGenerator"))
    return registry


def fake_registry() -> Registry:
    """Studio's own registry plus the fakes above, and one contribution whose module does not exist."""
    registry = builtin_registry()
    # Runs inline on the engine thread, as Studio's own generators do.
    registry.add(Contribution(GENERATOR, "gated", "Gated test generator", "studio_testing:GatedGenerator"))
    registry.add(Contribution(GENERATOR, "failing", "Failing test generator", "studio_testing:FailingGenerator",
                              plugin_id="tests", plugin_name="Test Plugins"))
    registry.add(Contribution(GENERATOR, "missing", "Missing generator", "no_such_module_xyz:Generator",
                              plugin_id="broken-plugin"))
    return registry


def fake_request(generator: str = "gated", seed: int = 1, **kwargs) -> GenerationRequest:  # noqa: ANN003
    values = dict(model="unused", prompt="a test", width=64, height=64, steps=2, seed=seed, generator=generator)
    values.update(kwargs)
    return GenerationRequest(**values)


def unpack_plugin(plugins_dir: Path, wheel: Path, plugin_id: str) -> Path:
    """A wheel laid out as Studio's installer leaves it (a ``pip --target`` folder), without pip."""
    import zipfile

    folder = plugins_dir / plugin_id
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(folder)
    return folder


class ReplayOnCpu:
    """A stand-in for the CUDA graph capture: replay runs the step again, reading the same static buffers a
    graph would (the fast path's tests and CPU checks)."""

    made: ClassVar[list[ReplayOnCpu]] = []

    def __init__(self, step, cache) -> None:  # noqa: ANN001 - unet_graph.CaptureFn's arguments
        self.step = step
        self.output = step()
        self.replays = 0
        ReplayOnCpu.made.append(self)

    def replay(self) -> None:
        self.replays += 1
        self.output.copy_(self.step())


def next_start_window(qtbot):  # noqa: ANN001, ANN201 - a MainWindow
    """The main window over STUDIO_HOME's folders and settings file, as the next start of Studio makes it (its job
    service, not started, is ``window.service``)."""
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    service = JobService(builtin_registry(), GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         warm_up=False)
    window = MainWindow(load_settings(paths), service, paths.data_dir)
    qtbot.addWidget(window)
    return window


def at_a_terminal(home: Path, args: list[str], answer: bytes, env: dict[str, str] | None = None,
                  timeout: float = 60) -> tuple[int, str]:
    """``python -m studio ARGS`` on a pseudo-terminal: ``answer`` is typed once it asks "[y/N]"; the exit code
    and everything it showed."""
    full_env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8", **(env or {}))
    import pty  # POSIX only
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        sigint_as_at_a_terminal()  # the Ctrl+C typed there (b"\\x03") reaches it even if pytest ignores SIGINT
        os.chdir(home.parent)
        os.execve(sys.executable, [sys.executable, "-m", "studio", *args], full_env)
    shown, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal (it exited)
                    break
                if not chunk:
                    break
                shown += chunk
            if not answered and b"[y/N] " in shown and reading(pid):
                os.write(fd, answer)
                answered = True
        else:
            os.kill(pid, 9)
            raise AssertionError(f"studio did not finish at the terminal in {timeout} s: {shown!r}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace").replace("\r\n", "\n")


def reading(pid: int) -> bool:
    """Whether the process's main thread sleeps (in the read after the question), as a person's key would find it:
    a Ctrl+C between the question and the read sets Python's flag, but nothing wakes the read to see it."""
    try:
        stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): a moment is what a person takes anyway
        time.sleep(0.5)
        return True
    return stat.rpartition(")")[2].split()[0] == "S"


class FlatPictures:
    """Stands in for the diffusers generator: a flat picture per seed, at once."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def generate(self, request: GenerationRequest, context: Any  # noqa: ANN401 - the engine's JobContext
                 ) -> Iterator[tuple[Image.Image, Recipe]]:
        for index in range(request.batch_count):
            seed = request.seed_for(index)
            context.report_progress(request.steps, request.steps, index)
            yield Image.new("RGB", (request.width, request.height), (seed % 256, 40, 90)), Recipe(
                request.prompt, request.negative_prompt, request.steps, request.scheduler, request.cfg_scale, seed,
                request.width, request.height, "quick")


def requests_run(monkeypatch) -> list:  # noqa: ANN001 - pytest's monkeypatch
    """The requests a command (``studio generate``, ``history rerun``) goes on to generate, recorded instead of run:
    the engine is not started."""
    import studio.cli_job

    ran: list = []

    async def generate(request, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ran.append(request)
        return 0

    monkeypatch.setattr(studio.cli_job, "_generate", generate)
    return ran


def spandrel_installed(monkeypatch, installed: bool) -> None:  # noqa: ANN001 - pytest's monkeypatch
    """The spandrel library as the command line's early check finds it (importlib.util.find_spec), here or not,
    whether or not this machine has it; every other module is found as it is."""
    import importlib.machinery
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "spandrel":
            return real(name, package)
        return importlib.machinery.ModuleSpec("spandrel", None) if installed else None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
