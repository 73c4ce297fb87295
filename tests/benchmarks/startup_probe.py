"""Benchmark: the window's main thread while the engine starts (imports torch and diffusers, picks the device)
and, with --model, while it preloads the model the prompt panel shows.

Runs the real app (``studio.app.run_app``, offscreen unless a display is set, in a throwaway STUDIO_HOME)
with a 2 ms timer probe from the first painted frame until the engine says it is ready, then, with a model,
on until the status bar names it; then quits. Prints each phase's gaps between ticks (p99, max, the five
longest) and its seconds after the first frame.
Run: python tests/benchmarks/startup_probe.py [--runs 3] [--model PATH]
(``ui_probe_full.py`` builds a full-size SD 1.5 with random weights; its folder can be the --model.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from PySide6.QtCore import QTimer
from test_ui_responsiveness import MainThreadProbe
import studio.app
from studio.ui.main_window import MainWindow
from studio.ui.status_bar import ENGINE_STARTING

start = MainWindow.start

def start_with_probe(self):
    phases = [("ready", lambda: self.status.device_label.text() not in ("", ENGINE_STARTING))]
    if {model!r}:
        phases.append(("model loaded", lambda: self.status.model_label.text() != "No model loaded"))
    shown = time.perf_counter()
    def watch(probe):
        name, done = phases[0]
        if not done():
            QTimer.singleShot(20, lambda: watch(probe))
            return
        result, gaps = probe.stop(), sorted(probe.gaps_ms(), reverse=True)[:5]
        print(f"{{name}} {{time.perf_counter() - shown:.2f}} s after the first frame; {{result}}; "
              f"longest gaps {{', '.join(f'{{g:.0f}}' for g in gaps)}} ms", flush=True)
        del phases[0]
        if phases:
            watch(probe_from_now())
        else:
            self.close()
    watch(probe_from_now())
    return start(self)

def probe_from_now():
    probe = MainThreadProbe()
    probe.start()
    return probe

MainWindow.start = start_with_probe
sys.exit(studio.app.run_app())
"""

SETTINGS = r"""
import sys
sys.path.insert(0, {root!r})
from studio.core.settings import load_settings
from studio.core.settings_writing import save_settings
from pathlib import Path
settings = load_settings()
link = settings.models_dir / Path({model!r}).name  # in the models folder, so the library's scan lists it
settings.models_dir.mkdir(parents=True, exist_ok=True)
link.symlink_to({model!r})
settings.generation.model = str(link)
save_settings(settings)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, help="a model to preload (a diffusers folder or a checkpoint)")
    args = parser.parse_args()
    model = str(args.model.resolve()) if args.model else ""
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests" / "ui"), model=model)
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, STUDIO_HOME=home)
            env.setdefault("QT_QPA_PLATFORM", "offscreen")
            if model:  # the prompt panel shows it at start, as when it was the last one used
                subprocess.run([sys.executable, "-c", SETTINGS.format(root=str(ROOT), model=model)], env=env,
                               check=True)
            done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  timeout=600)
            lines = [line for line in done.stdout.splitlines() if line.startswith(("ready", "model loaded"))]
            for line in lines or ["no result: " + done.stderr.strip()[-500:]]:
                print(f"run {run}: {line}", flush=True)


if __name__ == "__main__":
    main()
