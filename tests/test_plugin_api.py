"""studio.plugin_api's helper for plugins' own tests, and the guide's testing example run as it is written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from studio.plugin_api import InvalidRequest, checked_params

ROOT = Path(__file__).resolve().parents[1]

MANIFEST = '''\
id = "my-plugin"
name = "My Plugin"
version = "1.0.0"
api_version = ">=1.0,<2"

[[generators]]
id = "my-gen"
title = "My generator"
target = "my_plugin.generator:MyGenerator"

[[generators.parameters]]
type = "choice"
name = "style"
choices = ["soft", "hard"]

[[generators.parameters]]
type = "seed"
name = "noise_seed"

[[postprocessors]]
id = "my-filter"
title = "My filter"
target = "my_plugin.filter:MyFilter"

[[postprocessors.parameters]]
type = "float"
name = "amount"
default = 0.5
'''

GENERATOR = '''\
from PIL import Image


class MyGenerator:
    def __init__(self, env):
        self.env = env

    def generate(self, request, context):
        assert 0 <= request.params["noise_seed"] < 2**32  # Studio never hands a plugin -1
        for i in range(request.batch_count):
            context.check_cancelled()
            context.report_progress(1, 1, i)
            yield Image.new("RGB", (request.width, request.height), (request.seed_for(i) % 256, 0, 0))
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny plugin's project folder, its package importable as ``my_plugin``."""
    (tmp_path / "my_plugin").mkdir()
    (tmp_path / "my_plugin" / "__init__.py").write_text("")
    (tmp_path / "my_plugin" / "generator.py").write_text(GENERATOR)
    (tmp_path / "my_plugin" / "studio-plugin.toml").write_text(MANIFEST)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n == "my_plugin" or n.startswith("my_plugin.")]:
        del sys.modules[name]


def test_checked_params_fills_defaults_and_gives_a_seed_left_random_a_real_one(plugin: Path) -> None:
    manifest = plugin / "my_plugin" / "studio-plugin.toml"
    assert checked_params(manifest, "my-gen", {"style": "hard"}, seed=7) == {"style": "hard", "noise_seed": 7}
    drawn = checked_params(manifest, "my-gen")
    assert drawn["style"] == "soft" and 0 <= drawn["noise_seed"] < 2**32  # random, never -1
    assert checked_params(manifest, "my-gen", {"noise_seed": 42}) == {"style": "soft", "noise_seed": 42}
    assert checked_params(manifest, "my-filter") == {"amount": 0.5}


@pytest.mark.parametrize(("values", "contribution", "message"), [
    ({"style": "wavy"}, "my-gen", "My generator: Style must be one of soft, hard, not 'wavy'."),
    ({"amount": 3}, "my-filter", "My filter: Amount must be between 0 and 1, not 3."),
    ({"colour": 1}, "my-gen", "My generator has no parameter 'colour'; its parameters are: noise_seed, style."),
    ({}, "nothing", "declares no generator or post-processor 'nothing'."),
])
def test_checked_params_refuses_what_studio_refuses(plugin: Path, values: dict, contribution: str,
                                                   message: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        checked_params(plugin / "my_plugin" / "studio-plugin.toml", contribution, values)
    assert str(err.value).endswith(message)


def test_the_guide_s_testing_example_runs_as_written(plugin: Path) -> None:
    guide = (ROOT / "plugins" / "README.md").read_text(encoding="utf-8")
    section = guide[guide.index("## 8. Testing locally"):guide.index("## 9. ")]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("```", start)]
    assert "studio.core" not in code and "studio.plugin_host" not in code  # only the stable API
    namespace = {"__file__": str(plugin / "test_my_plugin.py"), "__name__": "test_my_plugin"}
    exec(compile(code, "plugins/README.md section 8", "exec"), namespace)  # noqa: S102 - the guide's own code
    namespace["test_batch"]()


@pytest.mark.parametrize(("change", "message"), [
    (('target = "my_plugin.generator:MyGenerator"', 'target = "my_plugin/generator.py"'),
     "the generator 'my-gen' needs target = \"package.module:attribute\"."),
    (('id = "my-plugin"', 'id = "My Plugin!"'), "is not a plain name"),
    (('api_version = ">=1.0,<2"', 'api_version = "one"'), "api_version 'one' is not a version range"),
    (('title = "My filter"', 'title = "My\\u202efilter"'), "contains the control character"),
])
def test_checked_params_refuses_a_manifest_studio_would_refuse_to_load(plugin: Path, change: tuple[str, str],
                                                                      message: str) -> None:
    """A plugin's own tests judge its manifest as Studio does, so one Studio refuses does not pass them."""
    manifest = plugin / "my_plugin" / "studio-plugin.toml"
    manifest.write_text(MANIFEST.replace(*change, 1))
    with pytest.raises(InvalidRequest, match="The plugin manifest .*studio-plugin.toml") as err:
        checked_params(manifest, "my-filter")
    assert message in str(err.value)


def test_checked_params_says_when_the_manifest_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="could not be read"):
        checked_params(tmp_path / "studio-plugin.toml", "my-gen")
