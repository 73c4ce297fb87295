"""The plugin installer: what it installs, what it refuses, and that no plugin code ever runs.

Offline: pip sees only hand-built wheels (``--no-index --find-links``). Refusals leave every file
outside ``plugins_dir/.staging`` as it was, and the staging folder empty.
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from plugin_wheels import (
    build_wheel,
    manifest_text,
    plugin_source,
    plugin_wheel,
    tar_tree,
    tar_with,
    zip_tree,
)

from studio.core.errors import StudioError
from studio.core.plugin_manifest import ManifestError
from studio.plugin_host import installer as installer_module
from studio.plugin_host.dependencies import PluginDependencies
from studio.plugin_host.installer import (
    InstallError,
    PluginInstaller,
)

SENTINEL_CODE = 'import pathlib; pathlib.Path({path!r}).write_text("imported")\n'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Wheels built once: the plugin (its __init__ writes a sentinel), a dependency, a plugin needing it."""
    root = tmp_path_factory.mktemp("wheels")
    sentinel = root / "SENTINEL"
    links = root / "links"
    build_wheel(links, "depx", "1.2", {"depx/__init__.py": "VALUE = 12\n"})
    build_wheel(links, "old-torch-user", "1.0", {"old_torch_user.py": ""}, requires=["torch<1"])
    return {
        "sentinel": sentinel,
        "links": links,
        "good": plugin_wheel(root / "good", init_code=SENTINEL_CODE.format(path=str(sentinel))),
        "v11": plugin_wheel(root / "v11", version="1.1.0"),
        "with_dep": plugin_wheel(root / "dep", requires=["depx>=1"]),
        "transitive_torch": plugin_wheel(root / "tt", requires=["old-torch-user"]),
    }


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "plugins"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def installer(plugins_dir: Path, built: dict[str, Path]) -> PluginInstaller:
    return PluginInstaller(plugins_dir, pip_args=("--no-index", "--find-links", str(built["links"])))


def outside_staging(root: Path, plugins_dir: Path) -> set[str]:
    staging = plugins_dir / ".staging"
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p != staging and staging not in p.parents}


def refused(installer: PluginInstaller, source: object, root: Path, match: str,
            taken: dict[str, str] | None = None) -> str:
    """plan() must refuse with a sentence and change nothing outside an (emptied) staging folder."""
    before = outside_staging(root, installer.plugins_dir)
    with pytest.raises(StudioError, match=match) as err:
        installer.plan(source, taken)  # type: ignore[arg-type]
    assert outside_staging(root, installer.plugins_dir) == before
    assert list((installer.plugins_dir / ".staging").iterdir()) == []
    message = str(err.value)
    assert message[0].isupper() or message.startswith("pip"), message
    assert message.endswith("."), message
    return message


# --- installs ----------------------------------------------------------------------------------------

def test_a_plugin_wheel_installs_into_its_own_folder_without_running(installer: PluginInstaller,
                                                                    plugins_dir: Path, built: dict[str, Path]) -> None:
    plan = installer.plan(built["good"])
    assert (plan.manifest.id, plan.distribution, plan.version, plan.dependencies, plan.replaces) == (
        "test-plugin", "studio-test-plugin", "1.0.0", (), None)
    text = plan.describe()
    for part in ("Test Plugin 1.0.0", "test-plugin", "Tests", "Permissions: none", "Test generator",
                 "Installs no other packages"):
        assert part in text
    assert not (plugins_dir / "test-plugin").exists()  # planning installs nothing
    folder = installer.install(plan)
    assert folder == plugins_dir / "test-plugin"
    assert (folder / "studio_test_plugin" / "studio-plugin.toml").is_file()
    dists = list(importlib.metadata.distributions(path=[str(folder)]))
    assert [(d.metadata["Name"], d.version) for d in dists] == [("studio-test-plugin", "1.0.0")]
    assert [ep.value for ep in dists[0].entry_points if ep.group == "studio.plugins"] == [
        "studio_test_plugin:studio-plugin.toml"]
    assert not built["sentinel"].exists()  # the plugin's code was never imported
    assert list((plugins_dir / ".staging").iterdir()) == []
    installer.uninstall("test-plugin")
    assert not folder.exists()
    assert list((plugins_dir / ".trash").iterdir()) == []
    assert sorted(p.name for p in plugins_dir.iterdir()) == [".staging", ".swap.lock", ".trash"]


def test_an_update_replaces_the_old_version_whole(installer: PluginInstaller, plugins_dir: Path,
                                                  built: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    installer.install(installer.plan(built["good"]))
    (plugins_dir / "state.json").write_text("{}")  # someone else's file: left alone
    # As in the running app, the installed plugin is importable: its own package is no clash for an
    # update, but another plugin shipping the same package is refused.
    monkeypatch.syspath_prepend(str(plugins_dir / "test-plugin"))
    other = plugin_wheel(tmp_path / "other", plugin_id="other-plugin", dist="other-plugin")
    refused(installer, other, tmp_path, "top-level module 'studio_test_plugin', which would shadow")
    plan = installer.plan(built["v11"], {"test-plugin": "studio-test-plugin"})
    assert plan.replaces == "1.0.0" and "replaces the installed version 1.0.0" in plan.describe()
    installer.install(plan)
    infos = sorted(p.name for p in (plugins_dir / "test-plugin").glob("*.dist-info"))
    assert infos == ["studio_test_plugin-1.1.0.dist-info"]
    assert (plugins_dir / "state.json").read_text() == "{}"
    assert list((plugins_dir / ".trash").iterdir()) == []


def test_a_failed_swap_puts_the_old_version_back(installer: PluginInstaller, plugins_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (plugins_dir / "test-plugin").mkdir(parents=True)
    (plugins_dir / "test-plugin" / "old.txt").write_text("old")
    target = plugins_dir / ".staging" / "x" / "target"
    target.mkdir(parents=True)
    real_rename = os.rename

    def failing_rename(src: object, dst: object) -> None:
        if Path(str(src)) == target:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(installer_module.os, "rename", failing_rename)
    with pytest.raises(InstallError, match="could not be put in place: No space left"):
        installer._swap_in(target, "test-plugin")
    assert (plugins_dir / "test-plugin" / "old.txt").read_text() == "old"


ANOTHER_STUDIO_STARTS = "import sys; from pathlib import Path; " \
    "from studio.plugin_host.installer import PluginInstaller; PluginInstaller(Path(sys.argv[1]), protected={})"


def another_studio_starts(plugins_dir: Path) -> None:
    """A second Studio (a window, a `studio plugins` command) starting: its installer tidies the plugins folder."""
    repo = Path(installer_module.__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", ANOTHER_STUDIO_STARTS, str(plugins_dir)], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(repo)})


def test_a_studio_starting_during_an_update_leaves_the_old_version_it_set_aside(
        installer: PluginInstaller, plugins_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (plugins_dir / "test-plugin").mkdir(parents=True)
    (plugins_dir / "test-plugin" / "old.txt").write_text("old")
    target = plugins_dir / ".staging" / "x" / "target"
    target.mkdir(parents=True)
    real_rename = os.rename
    set_aside: list[Path] = []

    def starts_then_fails(src: object, dst: object) -> None:
        if Path(str(src)) == target:  # the old version is in the trash now, the new one not yet in place
            set_aside.extend((plugins_dir / ".trash").iterdir())
            another_studio_starts(plugins_dir)
            assert [p for p in set_aside if p.exists()] == set_aside  # not tidied away while in use
            raise OSError(28, "No space left on device")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(installer_module.os, "rename", starts_then_fails)
    with pytest.raises(InstallError, match="could not be put in place: No space left"):
        installer._swap_in(target, "test-plugin")
    assert len(set_aside) == 1
    assert (plugins_dir / "test-plugin" / "old.txt").read_text() == "old"  # put back
    # With no update running, what a crash left in the trash is tidied at the next start.
    (plugins_dir / ".trash" / "test-plugin-left").mkdir()
    another_studio_starts(plugins_dir)
    assert list((plugins_dir / ".trash").iterdir()) == []


def test_a_dependency_is_planned_and_lands_in_the_plugins_folder(installer: PluginInstaller,
                                                                 built: dict[str, Path]) -> None:
    plan = installer.plan(built["with_dep"])
    assert plan.dependencies == (("depx", "1.2"),)
    assert "depx 1.2" in plan.describe()
    folder = installer.install(plan)
    assert (folder / "depx" / "__init__.py").read_text() == "VALUE = 12\n"
    assert (folder / "depx-1.2.dist-info").is_dir()


def test_source_folder_zip_and_sdist_install_with_flit_core(installer: PluginInstaller, plugins_dir: Path,
                                                            tmp_path: Path) -> None:
    sentinel = tmp_path / "SOURCE_SENTINEL"
    src = plugin_source(tmp_path / "src", init_code=SENTINEL_CODE.format(path=str(sentinel)))
    (src / ".git").mkdir()
    (src / ".git" / "config").write_text("x")
    # Decoys beside pyproject.toml: neither pip nor the build backend may be imported from the project.
    for decoy in ("flit_core/__init__.py", "flit_core/buildapi.py", "pip/__init__.py", "pip/__main__.py"):
        (src / decoy).parent.mkdir(exist_ok=True)
        (src / decoy).write_text(SENTINEL_CODE.format(path=str(sentinel)))
    sources = [src, zip_tree(src, tmp_path / "plugin.zip"),
               tar_tree(src, tmp_path / "studio_test_plugin-1.0.0.tar.gz", "studio_test_plugin-1.0.0/")]
    for number, source in enumerate(sources):
        plan = installer.plan(source)
        assert (plan.manifest.id, plan.distribution, plan.version) == ("test-plugin", "studio-test-plugin", "1.0.0")
        assert plan.replaces == (None if number == 0 else "1.0.0")
        folder = installer.install(plan)
        assert (folder / "studio_test_plugin" / "generator.py").is_file()
    assert not sentinel.exists()
    assert list((plugins_dir / ".staging").iterdir()) == []


def test_discard_removes_the_staging_folder(installer: PluginInstaller, plugins_dir: Path,
                                            built: dict[str, Path]) -> None:
    plan = installer.plan(built["good"])
    assert plan.staging.is_dir() and plan.wheel.is_file()
    installer.discard(plan)
    installer.discard(plan)  # twice is fine
    assert list((plugins_dir / ".staging").iterdir()) == []
    assert not (plugins_dir / "test-plugin").exists()


# --- refusals ----------------------------------------------------------------------------------------

def test_unsafe_archives_are_refused_before_anything_is_written(installer: PluginInstaller, tmp_path: Path,
                                                                plugins_dir: Path) -> None:
    src = tmp_path / "slip.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("proj/pyproject.toml", "")
        zf.writestr("../evil.txt", "evil")
    refused(installer, src, tmp_path, "points outside its folder")
    with zipfile.ZipFile(tmp_path / "abs.zip", "w") as zf:
        zf.writestr("/tmp/evil.txt", "evil")
    refused(installer, tmp_path / "abs.zip", tmp_path, "absolute path")
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        info = zipfile.ZipInfo("proj/link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    refused(installer, tmp_path / "link.zip", tmp_path, "symbolic link")
    link = tarfile.TarInfo("proj/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    refused(installer, tar_with(tmp_path / "link.tar.gz", [(link, None)]), tmp_path, "symbolic link")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("proj/zeros.bin", bytes(50 * 1024 * 1024))
    refused(installer, tmp_path / "bomb.zip", tmp_path, "zip bomb")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_a_wheel_that_is_a_zip_bomb_is_refused(installer: PluginInstaller, tmp_path: Path) -> None:
    wheel = plugin_wheel(tmp_path / "w", extra_files={"studio_test_plugin/zeros.bin": bytes(50 * 1024 * 1024)})
    refused(installer, wheel, tmp_path, "zip bomb")


@pytest.mark.parametrize(("manifest", "match"), [
    ("id = [", "not valid TOML"),
    ('name = "x"\nversion = "1.0"\napi_version = ">=1"\n', "has no 'id'"),
    (manifest_text("../x"), "not a plain name"),
    (manifest_text("a/b"), "not a plain name"),
])
def test_bad_manifests_are_refused(installer: PluginInstaller, tmp_path: Path, manifest: str, match: str) -> None:
    wheel = build_wheel(tmp_path / "w", "bad-plugin", "1.0", {"bad_plugin/studio-plugin.toml": manifest},
                        {"studio.plugins": {"test-plugin": "bad_plugin:studio-plugin.toml"}})
    message = refused(installer, wheel, tmp_path, match)
    assert "studio-plugin.toml" in message


def test_a_wheel_without_the_entry_point_is_not_a_plugin(installer: PluginInstaller, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "plain-lib", "1.0", {"plain_lib/__init__.py": ""},
                        {"console_scripts": {"x": "plain_lib:main"}})
    message = refused(installer, wheel, tmp_path, "is not a Studio plugin")
    assert "studio.plugins" in message


def test_needing_another_torch_is_refused(installer: PluginInstaller, tmp_path: Path,
                                          built: dict[str, Path]) -> None:
    torch = importlib.metadata.version("torch")
    direct = plugin_wheel(tmp_path / "w", requires=["torch<1"])
    message = refused(installer, direct, tmp_path, "would replace Studio's own torch")
    assert torch in message
    # Through a dependency: only pip's resolver (with Studio's packages pinned) can see it.
    message = refused(installer, built["transitive_torch"], tmp_path, "different version of Studio's own torch")
    assert torch in message and "old-torch-user 1.0 depends on torch<1" in message


def test_a_direct_url_requirement_is_refused(installer: PluginInstaller, tmp_path: Path) -> None:
    wheel = plugin_wheel(tmp_path / "w", requires=["foo @ https://example.com/foo.whl"])
    refused(installer, wheel, tmp_path, r"requires foo from a direct address \(https://example.com/foo.whl\)")


def test_shadowing_an_installed_module_is_refused(installer: PluginInstaller, tmp_path: Path) -> None:
    wheel = plugin_wheel(tmp_path / "w", extra_files={"studio/__init__.py": "", "studio/core/__init__.py": ""})
    refused(installer, wheel, tmp_path, "top-level module 'studio', which would shadow")
    wheel = plugin_wheel(tmp_path / "w2", extra_files={"json.py": ""})
    refused(installer, wheel, tmp_path, "shadow Python's own 'json'")
    wheel = plugin_wheel(tmp_path / "w3", extra_files={"evil.pth": "import os"})
    refused(installer, wheel, tmp_path, r"\.pth file")


def test_a_taken_id_is_refused(installer: PluginInstaller, tmp_path: Path, built: dict[str, Path]) -> None:
    refused(installer, built["good"], tmp_path, "The plugin id test-plugin is already taken by other-dist.",
            {"test-plugin": "other-dist"})
    refused(installer, built["good"], tmp_path, "already taken by Studio itself", {"test-plugin": "studio"})


def test_refused_sources_and_projects(installer: PluginInstaller, tmp_path: Path) -> None:
    refused(installer, tmp_path / "missing.whl", tmp_path, "does not exist")
    (tmp_path / "notes.txt").write_text("x")
    refused(installer, tmp_path / "notes.txt", tmp_path, "not something Studio installs plugins from")
    setuptools_src = plugin_source(tmp_path / "st", build_backend="setuptools.build_meta")
    message = refused(installer, setuptools_src, tmp_path, "only with flit_core")
    assert "install a wheel instead" in message
    dynamic = plugin_source(tmp_path / "dyn")
    text = (dynamic / "pyproject.toml").read_text().replace('version = "1.0.0"', 'dynamic = ["version"]')
    (dynamic / "pyproject.toml").write_text(text)
    refused(installer, dynamic, tmp_path, "static version")
    (tmp_path / "empty").mkdir()
    refused(installer, zip_tree(tmp_path / "empty", tmp_path / "empty.zip"), tmp_path, "no single pyproject.toml")
    mismatch = build_wheel(tmp_path / "mm", "mm-plugin", "1.0", {"mm/studio-plugin.toml": manifest_text()},
                           {"studio.plugins": {"other-name": "mm:studio-plugin.toml"}})
    refused(installer, mismatch, tmp_path, "must be the same")
    api = plugin_wheel(tmp_path / "api", package="studio_api_plugin", plugin_id="api-plugin",
                       extra_files={"studio_api_plugin/studio-plugin.toml":
                                    manifest_text("api-plugin", "studio_api_plugin").replace(">=1.0,<2", ">=2")})
    refused(installer, api, tmp_path, "needs plugin API >=2")


def test_a_read_only_plugins_folder_is_one_sentence_naming_it(installer: PluginInstaller, plugins_dir: Path,
                                                                built: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> str:  # (root may write anywhere: a stand-in says it)
        raise OSError(errno.EROFS, "Read-only file system", str(plugins_dir / ".staging" / "tmpx"))

    with monkeypatch.context() as patched:
        patched.setattr(installer_module.tempfile, "mkdtemp", read_only)
        with pytest.raises(InstallError) as err:
            installer.plan(built["good"])
    assert str(err.value) == f"Could not install {built['good'].name}: {plugins_dir} is read-only."


def test_where_removed_plugins_go_cannot_be_made_install_and_uninstall_say_so(
        installer: PluginInstaller, plugins_dir: Path, built: dict[str, Path]) -> None:
    installer.install(installer.plan(built["good"]))
    shutil.rmtree(plugins_dir / ".trash", ignore_errors=True)
    (plugins_dir / ".trash").write_text("x")  # a file where the folder should be: no folder can be made there
    plan = installer.plan(built["v11"], {"test-plugin": "studio-test-plugin"})
    with pytest.raises(InstallError) as err:
        installer.install(plan)
    assert str(err.value) == ("Could not install studio-test-plugin: "
                              f"{plugins_dir} could not be written to (File exists).")
    installer.discard(plan)
    with pytest.raises(InstallError) as err:
        installer.uninstall("test-plugin")
    assert str(err.value) == f"Could not remove test-plugin: {plugins_dir} could not be written to (File exists)."
    infos = sorted(p.name for p in (plugins_dir / "test-plugin").glob("*.dist-info"))
    assert infos == ["studio_test_plugin-1.0.0.dist-info"]  # the installed version is untouched


def test_a_folder_without_pyproject_is_not_a_plugin_s_source_and_setup_py_is_refused(
        installer: PluginInstaller, tmp_path: Path) -> None:
    (tmp_path / "notplugin").mkdir()
    (tmp_path / "notplugin" / "readme.txt").write_text("x")
    message = refused(installer, tmp_path / "notplugin", tmp_path, "no pyproject")
    assert message == "The folder notplugin has no pyproject.toml, so it is not a plugin's source."
    (tmp_path / "oldstyle").mkdir()
    (tmp_path / "oldstyle" / "setup.py").write_text("raise SystemExit('setup.py ran')\n")
    for source in (tmp_path / "oldstyle", zip_tree(tmp_path / "oldstyle", tmp_path / "oldstyle.zip")):
        message = refused(installer, source, tmp_path, "only with flit_core")  # its setup.py would run
        assert message.startswith(f"The plugin source {source.name} is not built with flit_core")
        assert ".staging" not in message


def test_uninstall_checks_the_id(installer: PluginInstaller) -> None:
    with pytest.raises(ManifestError, match="not a plain name"):
        installer.uninstall("../data")
    with pytest.raises(InstallError, match="No plugin nothing-here is installed"):
        installer.uninstall("nothing-here")


def test_a_plugin_taking_a_generator_id_another_plugin_has_is_refused(installer: PluginInstaller, tmp_path: Path,
                                                                       built: dict[str, Path]) -> None:
    before = outside_staging(tmp_path, installer.plugins_dir)
    with pytest.raises(StudioError) as err:
        installer.plan(built["good"], {}, {("generator", "test-gen"): ("twin-a", "Twin A")})
    assert str(err.value) == ("The plugin Test Plugin's generator id 'test-gen' is already owned by Twin A; "
                              "it was refused.")
    assert outside_staging(tmp_path, installer.plugins_dir) == before
    assert list((installer.plugins_dir / ".staging").iterdir()) == []


def test_a_plugin_needing_a_version_another_enabled_plugin_s_folder_rejects_is_refused(plugins_dir: Path,
                                                                                       tmp_path: Path) -> None:
    links = tmp_path / "fakehum-links"
    for version in ("4.9.0", "4.17.0"):
        build_wheel(links, "fakehum", version, {"fakehum/__init__.py": f"VERSION = {version!r}\n"})
    installer = PluginInstaller(plugins_dir, pip_args=("--no-index", "--find-links", str(links)))
    # The enabled plugin "TP Dep 2" carries fakehum 4.9.0 and needs exactly that.
    other = PluginDependencies("tp-dep2", "TP Dep 2", {"fakehum": ("fakehum", "4.9.0")},
                               (Requirement("fakehum==4.9.0"),))
    newer = plugin_wheel(tmp_path / "newer", requires=["fakehum>=4"])  # pip picks fakehum 4.17.0
    with pytest.raises(InstallError) as err:
        installer.plan(newer, enabled_plugins=[other])
    assert str(err.value) == (
        "The plugin Test Plugin 1.0.0 was refused: it carries fakehum 4.17.0 but the enabled plugin TP Dep 2 "
        "(tp-dep2) needs fakehum==4.9.0 (its folder has fakehum 4.9.0), and plugins share one Python process, which "
        "loads only one fakehum; disable TP Dep 2 (tp-dep2) first.")
    assert list((plugins_dir / ".staging").iterdir()) == []
    # A version both accept is fine; so is the same plan beside a plugin that does not carry fakehum.
    lenient = PluginDependencies("tp-dep2", "TP Dep 2", {"fakehum": ("fakehum", "4.9.0")}, (Requirement("fakehum>=4"),))
    assert installer.plan(newer, enabled_plugins=[lenient]).dependencies == (("fakehum", "4.17.0"),)
    assert installer.plan(newer, enabled_plugins=[PluginDependencies("x", "X", {}, ())]).dependencies
