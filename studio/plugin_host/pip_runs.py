"""Running pip for the installer: Studio's own packages pinned, nothing read from or written outside the staging
folder, and a failure told as one sentence."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from studio.plugin_host.wheels import InstallError, WheelInfo

PIP_TIMEOUT = 900.0  # seconds; dependencies may be large downloads
# pip settings from the environment that would send files elsewhere or use another interpreter.
_PIP_ENV_DROPPED = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_PYTHON", "PIP_DRY_RUN", "PIP_EDITABLE", "PIP_SRC")


def protected_packages() -> dict[str, str]:
    """Studio's own requirement closure (canonical name -> running version), plus studio and pip.

    Should Studio run without its own metadata (from a source checkout), every distribution
    installed is protected instead: refusing too much is better than swapping torch."""
    try:
        importlib.metadata.distribution("studio")
    except importlib.metadata.PackageNotFoundError:
        return {canonicalize_name(d.metadata["Name"] or "?"): d.version for d in importlib.metadata.distributions()}
    found: dict[str, str] = {}
    todo = ["studio", "pip"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement not installed: nothing to protect
        found[name] = dist.version
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            # Roughly honour markers; requirements only behind an extra are skipped.
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def run_pip(python: str, args: list[str], staging: Path, doing: str, *, timeout: float,
            protected: Mapping[str, str], info: WheelInfo | None = None) -> None:
    """``python -m pip args`` in ``staging``; InstallError saying what went wrong (``doing``: "install x")."""
    env = {k: v for k, v in os.environ.items() if k not in _PIP_ENV_DROPPED}
    # pip's cache and temp files stay in the staging folder: nothing is written elsewhere.
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_USER="0", PIP_REQUIRE_VIRTUALENV="0",
               PIP_CACHE_DIR=str(staging / "cache"), TMPDIR=str(staging / "tmp"))
    # -P and an empty working folder: nothing in the plugin's folder can be imported in place of pip's own.
    command = [python, "-P", "-m", "pip", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=staging / "tmp", check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"pip took longer than {timeout:.0f} seconds to {doing}; "
                           "nothing was installed.") from None
    except OSError as exc:
        raise InstallError(f"pip could not be started to {doing}: {exc.strerror or exc}.") from None
    if done.returncode != 0:
        output = done.stdout + "\n" + done.stderr
        raise InstallError(pip_failure(output, doing, protected, info))


_CONSTRAINT = re.compile(r"\(constraint\)\s+([A-Za-z0-9][A-Za-z0-9._-]*)")


def pip_failure(output: str, doing: str, protected: Mapping[str, str], info: WheelInfo | None) -> str:
    """A sentence from pip's output: a clash with Studio's own packages, or pip's last real error."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    clashes = sorted({canonicalize_name(n) for n in _CONSTRAINT.findall(output)} & protected.keys())
    if clashes and info is not None:
        needs = "; ".join(line for line in lines if " depends on " in line)
        names = ", ".join(f"{n} {protected[n]}" for n in clashes)
        return (f"The plugin {info.distribution} {info.version} needs a different version of Studio's own {names}"
                f"{f' ({needs})' if needs else ''}; it was refused.")
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")
              and "ResolutionImpossible" not in line]
    reason = (errors or lines or ["pip gave no reason"])[-1].rstrip(".")
    return f"pip could not {doing}: {reason}; nothing was installed."
