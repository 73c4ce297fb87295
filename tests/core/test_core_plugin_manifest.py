"""studio-plugin.toml: a checked manifest, or one sentence saying what is wrong with it."""

from __future__ import annotations

import pytest
from plugin_wheels import manifest_text

from studio.core.plugin_manifest import ManifestError, check_plugin_id, parse_manifest


def test_a_good_manifest():
    manifest = parse_manifest(manifest_text(manifest_extra='''
[[postprocessors]]
id = "grain"
title = "Film grain"
target = "pkg.post:Grain"
[[postprocessors.parameters]]
name = "amount"
type = "float"
default = 0.5
'''))
    assert (manifest.id, manifest.name, manifest.version, manifest.author) == ("test-plugin", "Test Plugin",
                                                                               "1.0.0", "Tests")
    assert manifest.compatible and manifest.incompatibility() == ""
    assert [c.id for c in manifest.of_kind("generator")] == ["test-gen"]
    (grain,) = manifest.of_kind("postprocessor")
    assert grain.parameters[0].name == "amount" and grain.target == "pkg.post:Grain"
    assert manifest.permissions.describe() == "none"


@pytest.mark.parametrize(("change", "message"), [
    (('id = "test-plugin"', 'id = "../evil"'), "is not a plain name"),
    (('id = "test-plugin"', 'id = "a/b"'), "is not a plain name"),
    (('id = "test-plugin"', 'id = "Caps"'), "is not a plain name"),
    (('id = "test-plugin"', 'id = "abc\\n"'), "is not a plain name"),  # "$" matched before a last newline
    (('id = "test-gen"', 'id = "test-gen\\n"'), "is not a plain name"),
    (('target = "studio_test_plugin.generator:Generator"', 'target = "studio_test_plugin.generator:Generator\\n"'),
     "needs target ="),
    (('id = "test-plugin"', 'id = "studio"'), "belongs to Studio itself"),
    (('id = "test-plugin"\n', ''), "has no 'id'"),
    (('version = "1.0.0"', 'version = "one"'), "is not a version number"),
    (('api_version = ">=1.0,<2"', 'api_version = "soon"'), "is not a version range"),
    (('target = "studio_test_plugin.generator:Generator"', 'target = "os.system"'), "needs target ="),
    (('network = false', 'network = "yes"'), "[permissions] takes only"),
    (('[[generators]]', '[[generator]]'), "contributes nothing"),
    (('id = "test-gen"', 'id = "bad id"'), "is not a plain name"),
    (('name = "Test Plugin"', 'name = [1]'), "'name' must be text"),
    (('name = "Test Plugin"', 'name = "Test\\u001b[2JPlugin"'), "'name' contains the control character U+001B, which "
                                                                "could disguise what Studio shows"),
    (('name = "Test Plugin"', 'name = "Test Plugin"\ndescription = "Safe.\\rInstalls nothing"'),
     "'description' contains the control character U+000D"),
    (('title = "Test generator"', 'title = "Test \\u202egenerator"'), "'title' contains the control character U+202E"),
    (('author = "Tests"', 'author = "Tests\\nStudio team"'), "'author' contains the control character U+000A"),
    (('target = "studio_test_plugin.generator:Generator"', 'target = "studio_test_plugin.generator:Generator"\n'
      '[[generators.parameters]]\nname = "prompt"\ntype = "text"'), "is one of Studio's own command-line options"),
])
def test_bad_manifests_are_refused_with_a_sentence(change, message):
    text = manifest_text().replace(*change)
    with pytest.raises(ManifestError) as err:
        parse_manifest(text, "plugin/studio-plugin.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("The plugin manifest plugin/studio-plugin.toml")


def test_not_toml_too_big_and_duplicates():
    with pytest.raises(ManifestError, match="is not valid TOML"):
        parse_manifest("id = [")
    with pytest.raises(ManifestError, match="larger than 256 KiB"):
        parse_manifest(b"#" * (256 * 1024 + 1))
    twice = manifest_text() + manifest_text().split("[[generators]]")[1].join(["[[generators]]", ""])
    with pytest.raises(ManifestError, match="declares the generator 'test-gen' twice"):
        parse_manifest(twice)


def test_an_incompatible_api_range_is_read_but_not_compatible():
    manifest = parse_manifest(manifest_text().replace(">=1.0,<2", ">=2.0,<3"))
    assert not manifest.compatible
    assert "needs plugin API >=2.0,<3, but this Studio offers API 1.1" in manifest.incompatibility()


@pytest.mark.parametrize("bad", ["", "-x", "x-", "a" * 65, "white space", "dot.ted", None, 3])
def test_plugin_ids_are_plain_names(bad):
    with pytest.raises(ManifestError):
        check_plugin_id(bad)


def test_a_description_may_have_line_breaks_and_parameter_texts_no_control_characters():
    manifest = parse_manifest(manifest_text().replace('author = "Tests"', 'author = "Tests"\n'
                                                      'description = "Two lines:\\nthe second."'))
    assert manifest.description == "Two lines:\nthe second."
    bad = manifest_text(manifest_extra='''
[[generators.parameters]]
name = "level"
type = "int"
help = "How red\\u001b]8;;https://evil.example\\u0007"
''')
    with pytest.raises(ManifestError, match="parameter 'level' has the control character U\\+001B in its help"):
        parse_manifest(bad)
