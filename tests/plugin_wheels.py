"""Hand-built wheels and source folders of Studio plugins, for tests (no build backend, no network).

``plugin_wheel`` makes a complete, valid plugin wheel; ``build_wheel`` any wheel at all (dependencies,
broken ones); ``plugin_source`` a flit_core source folder, and ``zip_tree``/``tar_tree`` archives of it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_GENERATOR = '''\
"""A tiny generator: one flat colour per picture, derived from its seed."""

from PIL import Image


class Generator:
    def __init__(self, env):
        self.env = env

    def generate(self, request, context):
        for i in range(request.batch_count):
            context.report_progress(1, 1, i)
            seed = request.seed_for(i)
            colour = (seed % 256, (seed // 256) % 256, (seed // 65536) % 256)
            yield Image.new("RGB", (request.width, request.height), colour)
'''


def _normalise(dist: str) -> str:
    """The distribution name as wheel file names and dist-info folders spell it."""
    return re.sub(r"[-_.]+", "_", dist).lower()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(dest: Path, dist: str, version: str, files: Mapping[str, str | bytes],
                entry_points: Mapping[str, Mapping[str, str]] | None = None,
                requires: Sequence[str] = (), metadata_extra: str = "") -> Path:
    """A py3-none-any wheel in dest holding files (archive path -> content) and a complete dist-info."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{_normalise(dist)}-{version}"
    info = f"{stem}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: test wheel\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires) + metadata_extra
    contents: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    contents[f"{info}/METADATA"] = metadata.encode()
    contents[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: studio-tests\nRoot-Is-Purelib: true\n"
                                 b"Tag: py3-none-any\n")
    if entry_points:
        text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items()) + "\n"
                       for group, names in entry_points.items())
        contents[f"{info}/entry_points.txt"] = text.encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in contents.items())
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = dest / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return path


def manifest_text(plugin_id: str = "test-plugin", package: str = "studio_test_plugin", version: str = "1.0.0",
                  generator_id: str = "test-gen", manifest_extra: str = "") -> str:
    return f'''\
id = "{plugin_id}"
name = "Test Plugin"
version = "{version}"
api_version = ">=1.0,<2"
author = "Tests"

[permissions]
network = false
files = false

[[generators]]
id = "{generator_id}"
title = "Test generator"
target = "{package}.generator:Generator"
''' + manifest_extra


def plugin_wheel(dest: Path, plugin_id: str = "test-plugin", package: str = "studio_test_plugin",
                 version: str = "1.0.0", generator_code: str = DEFAULT_GENERATOR, manifest_extra: str = "",
                 init_code: str = "", requires: Sequence[str] = (), generator_id: str = "test-gen",
                 dist: str | None = None, extra_files: Mapping[str, str | bytes] | None = None) -> Path:
    """A complete Studio plugin wheel (distribution ``dist`` or the package name with dashes)."""
    files: dict[str, str | bytes] = {
        f"{package}/__init__.py": init_code,
        f"{package}/generator.py": generator_code,
        f"{package}/studio-plugin.toml": manifest_text(plugin_id, package, version, generator_id, manifest_extra),
    }
    files.update(extra_files or {})
    return build_wheel(dest, dist or package.replace("_", "-"), version, files,
                       {"studio.plugins": {plugin_id: f"{package}:studio-plugin.toml"}}, requires)


def plugin_source(dest: Path, plugin_id: str = "test-plugin", package: str = "studio_test_plugin",
                  version: str = "1.0.0", init_code: str = "", manifest_extra: str = "",
                  build_backend: str = "flit_core.buildapi", requires: Sequence[str] = (),
                  pyproject_extra: str = "") -> Path:
    """A source folder of a plugin with a flit_core pyproject (static version); returns dest."""
    dist = package.replace("_", "-")
    deps = ", ".join(f'"{r}"' for r in requires)
    (dest / package).mkdir(parents=True, exist_ok=True)
    (dest / "pyproject.toml").write_text(f'''\
[build-system]
requires = ["flit_core>=3.4"]
build-backend = "{build_backend}"

[project]
name = "{dist}"
version = "{version}"
description = "A Studio test plugin."
dependencies = [{deps}]

[project.entry-points."studio.plugins"]
{plugin_id} = "{package}:studio-plugin.toml"
''' + pyproject_extra)
    (dest / package / "__init__.py").write_text(init_code)
    (dest / package / "generator.py").write_text(DEFAULT_GENERATOR)
    (dest / package / "studio-plugin.toml").write_text(manifest_text(plugin_id, package, version,
                                                                     manifest_extra=manifest_extra))
    return dest


def _tree_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def zip_tree(folder: Path, archive: Path, prefix: str = "") -> Path:
    """A zip of folder's files, each under prefix (e.g. "name-1.0/")."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _tree_files(folder):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def tar_tree(folder: Path, archive: Path, prefix: str = "") -> Path:
    """A .tar.gz of folder's files, each under prefix — an sdist when prefix is "name-version/"."""
    with tarfile.open(archive, "w:gz") as tf:
        for path in _tree_files(folder):
            tf.add(path, prefix + path.relative_to(folder).as_posix(), recursive=False)
    return archive


def tar_with(archive: Path, members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A .tar.gz of hand-made members (symlinks, devices, odd names) for refusal tests."""
    with tarfile.open(archive, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return archive


# Three ways a plugin starts a thread: a target function, a Thread subclass, a Timer. Each stops once STOP exists.
STARTS_THREADS = '''
import functools
import os
import threading
import time

STOP = {stop!r}


def wait(_name=""):
    while not os.path.exists(STOP):
        time.sleep(0.01)


class Waiter(threading.Thread):
    def run(self):
        wait()


class Generator:
    def __init__(self, env):
        threading.Thread(target=functools.partial(wait, "a"), daemon=True).start()
        Waiter(daemon=True).start()
        timer = threading.Timer(0, wait)
        timer.daemon = True
        timer.start()

    def generate(self, request, context):
        yield from ()
'''
