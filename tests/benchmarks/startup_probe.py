"""Benchmark: the window's main thread while the engine starts (imports torch and diffusers, picks the device).

Runs the real app (``studio.app.run_app``, offscreen unless a display is set, in throwaway config and data
folders) with a 2 ms timer probe from the first painted frame until the engine says it is ready, then quits.
Prints the gaps between ticks (p99, max, the five longest) and the seconds from first frame to ready.
Run: python tests/benchmarks/startup_probe.py [--runs 3]
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
    probe = MainThreadProbe()
    probe.start()
    shown = time.perf_counter()
    def check():
        if self.status.device_label.text() not in ("", ENGINE_STARTING):
            result, gaps = probe.stop(), sorted(probe.gaps_ms(), reverse=True)[:5]
            print(f"ready {{time.perf_counter() - shown:.2f}} s after the first frame; {{result}}; "
                  f"longest gaps {{', '.join(f'{{g:.0f}}' for g in gaps)}} ms", flush=True)
            self.close()
        else:
            QTimer.singleShot(20, check)
    QTimer.singleShot(20, check)
    return start(self)

MainWindow.start = start_with_probe
sys.exit(studio.app.run_app())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests" / "ui"))
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=f"{home}/config", XDG_DATA_HOME=f"{home}/data",
                       XDG_CACHE_HOME=f"{home}/cache")
            env.setdefault("QT_QPA_PLATFORM", "offscreen")
            done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  timeout=120)
            lines = [line for line in done.stdout.splitlines() if line.startswith("ready")]
            print(f"run {run}: {lines[0] if lines else 'no result: ' + (done.stderr.strip()[-500:])}", flush=True)


if __name__ == "__main__":
    main()
