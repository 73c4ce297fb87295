"""Settings → GPU: how jobs fit the GPU's memory, and how fast they run on it (the engine says which measures it
took and why). On a machine without a GPU it says so: the memory measures are off, with the reason, and the
speed choices are worded for the CPU, where they pick the precision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from studio.core.events import DeviceKind
from studio.core.speed_labels import SPEED_COMPILED, SPEED_FAST, SPEED_STANDARD

NO_GPU = "No GPU found: Studio runs on the CPU"
NO_VRAM = "On the CPU the models use system memory: the VRAM measures apply only on a GPU (the choice is kept for one)"
COMPILE_ON_CPU = "On the CPU this is the Fast speed: compiled, a step was slower there (it applies on a CUDA GPU)"


@dataclass(frozen=True)
class Choice:
    setting: str  # memory | speed
    value: str
    text: str
    tip: str
    cpu_text: str = ""  # the words on a machine without a GPU ("" : the same words)
    cpu_tip: str = ""
    cpu_off: str = ""  # why it does not apply there; "": it does

    def said(self, on_cpu: bool) -> str:
        """The status bar's sentence once it is chosen."""
        if on_cpu:
            return CPU_SAID.get(self.value, f"{self.text.replace('&', '')}: kept for when Studio runs on a GPU.")
        return GPU_SAID[self.value]


CHOICES = (
    Choice("memory", "auto", "Memory: &Auto", "Estimate what each job needs against the free VRAM and take the "
           "least measure that fits", cpu_off=NO_VRAM),
    Choice("memory", "high", "Memory: &High VRAM", "Keep everything on the GPU in half precision (fastest)",
           cpu_off=NO_VRAM),
    Choice("memory", "low", "Memory: &Low VRAM", "Attention slicing, VAE tiling and model CPU offload (for 4-6 GB "
           "GPUs)", cpu_off=NO_VRAM),
    # The three speeds are named alike ("Speed: …", as "Memory: …" above) in an artist's words; how each works
    # (CUDA graphs, bfloat16, torch.compile) is in its tooltip.
    Choice("speed", "fast", SPEED_FAST, "Capture each size's denoising step once, then replay it (CUDA graphs)",
           "", "A little less exact, faster: computes in bfloat16 on processors with bfloat16 units (AMX, AVX-512 "
           "BF16), else in float32; on a CUDA GPU, the fast path (CUDA graphs)"),
    Choice("speed", "eager", SPEED_STANDARD, "Plain diffusers, no graphs: for comparing, or if a driver "
           "misbehaves", "", "Full precision (plain diffusers in float32): for comparing, or the most exact pictures"),
    Choice("speed", "compile", SPEED_COMPILED, "Also compile the step with torch.compile: a little "
           "faster, but minutes of warm-up for every new size", cpu_off=COMPILE_ON_CPU),
)
GPU_SAID = {
    "auto": "GPU memory: Auto — each job is fitted to the free VRAM.",
    "high": "GPU memory: High VRAM — everything stays on the GPU.",
    "low": "GPU memory: Low VRAM — offload and tiling; slower, needs far less.",
    "fast": "GPU speed: Fast from the next job.",
    "eager": "GPU speed: Standard from the next job.",
    "compile": "GPU speed: Fastest (compiled) from the next job; the first job at each size warms up for minutes."}
CPU_SAID = {
    "fast": "Speed: Fast from the next job (a little less exact where the processor has bfloat16 units).",
    "eager": "Speed: Standard from the next job (full precision)."}


class GpuMenu(QMenu):
    def __init__(self, parent: QWidget, chosen: Callable[[str], str], choose: Callable[[str, str, str], None]) -> None:
        """``chosen(setting)`` is the current value; ``choose(setting, value, sentence)`` sets one and says so."""
        super().__init__("&GPU", parent)
        self.setToolTipsVisible(True)
        self.on_cpu = False  # until the engine says which kind of device it runs on: a GPU's words
        self.device_action = self.addAction(NO_GPU)
        self.device_action.setEnabled(False)
        self.device_action.setVisible(False)
        self._choices: dict[QAction, Choice] = {}
        for setting in ("memory", "speed"):
            if setting == "speed":
                self.addSeparator()
            group = QActionGroup(self)
            for choice in (c for c in CHOICES if c.setting == setting):
                action = self.addAction(choice.text)
                action.setCheckable(True)
                action.setChecked(chosen(setting) == choice.value)
                action.setData(choice.value)
                group.addAction(action)
                self._choices[action] = choice
            group.triggered.connect(lambda action: choose(self._choices[action].setting, action.data(),
                                                          self._choices[action].said(self.on_cpu)))
        self.show_device("")

    def show_device(self, kind: DeviceKind) -> None:
        """Word the menu for the kind of device the engine runs on ("" until it is known: a GPU's words)."""
        self.on_cpu = kind == "cpu"  # by the engine's kind, not its words: those are for people and may change
        self.device_action.setVisible(self.on_cpu)
        for action, choice in self._choices.items():
            off = self.on_cpu and bool(choice.cpu_off)
            action.setText(choice.cpu_text if self.on_cpu and choice.cpu_text else choice.text)
            tip = choice.cpu_off if off else choice.cpu_tip if self.on_cpu and choice.cpu_tip else choice.tip
            action.setToolTip(tip)
            action.setStatusTip(tip)
            action.setEnabled(not off)
