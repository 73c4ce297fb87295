"""``studio plugins list|install|uninstall|enable|disable|update``: the plugin dialog, headless.

Reads manifests only: no plugin code is imported by any of these commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.cli_confirm import confirmed, declined, no_terminal_to_ask
from studio.cli_exit import EXIT_BAD_INPUT, EXIT_FAILED
from studio.cli_notes import say_note
from studio.core.errors import StudioError, and_list
from studio.core.paths import studio_paths
from studio.core.plugin_manifest import PLUGIN_ID, RESERVED_IDS
from studio.core.safe_text import escaped
from studio.plugin_host.host import PluginHost, PluginRecord
from studio.plugin_host.registry import BUILTIN_PLUGIN, GENERATOR, POSTPROCESSOR


def add_plugins_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "plugins", help="list, install, enable, disable, update or remove plugins",
        description="Manage Studio plugins. Installing is not enabling: nothing from a plugin runs until you "
                    "enable it.")
    actions = parser.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="Studio's own generators and post-processors, then every installed "
                                              "plugin with its status (reads manifests only)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    install = actions.add_parser(
        "install", help="install from a wheel, sdist, zip, folder, or an index entry",
        description="Install a plugin. Shows what pip would install first (a dry run with Studio's own packages "
                    "pinned) and asks before installing anything. The plugin stays disabled until enabled.")
    install.add_argument("source", metavar="SOURCE",
                         help="a .whl, .tar.gz or .zip file, a plugin folder, or a plugin id (looked up in the "
                              "plugin index)")
    install.add_argument("--index", metavar="URL", help="the plugin index to look SOURCE up in (default: settings)")
    install.add_argument("-y", "--yes", action="store_true", help="install without asking")
    update = actions.add_parser("update", help="install newer versions from the plugin index")
    update.add_argument("plugin_id", nargs="?", metavar="ID", help="only this plugin")
    update.add_argument("--index", metavar="URL", help="the plugin index (default: settings)")
    update.add_argument("-y", "--yes", action="store_true", help="update without asking")
    uninstall = actions.add_parser("uninstall", help="remove a plugin installed by Studio",
                                   description="Remove a plugin installed by Studio, with its folder. Asks first.")
    uninstall.add_argument("plugin_id", metavar="ID")
    uninstall.add_argument("-y", "--yes", action="store_true", help="uninstall without asking")
    for name, text in (("enable", "let a plugin's generators and post-processors be used"),
                       ("disable", "stop using a plugin (it stays installed)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("plugin_id", metavar="ID")
    for action in (install, update, uninstall):
        action.epilog = "With no terminal to ask on (a script, a pipe), -y is needed."
    return parser


def open_host(safe_mode: bool = False) -> PluginHost:
    host = PluginHost(studio_paths().plugins_dir, safe_mode=safe_mode)
    host.refresh()
    return host


def run_plugins(args: argparse.Namespace) -> int:
    try:
        command = args.plugins_command
        # Safe mode loads no plugin: the list says so. The other commands run no plugin code anyway.
        host = open_host(safe_mode=command == "list" and getattr(args, "safe_mode", False))
        if host.state_notice:  # a damaged list of enabled plugins, set aside
            say_note(host.state_notice)
        if command == "list":
            return _list(host, args.json)
        if getattr(args, "plugin_id", None) in RESERVED_IDS:
            raise StudioError(_studio_s_own(args.plugin_id, command))
        if command in ("enable", "disable"):
            was_on = args.plugin_id in host.enabled_ids()
            record = host.set_enabled(args.plugin_id, command == "enable")
            if command == "disable" and record.error:  # one that cannot be read (a broken manifest) stays "failed"
                done = f"Disabled {record.name} {record.version}" if was_on else \
                    f"{record.name} {record.version} is already disabled"
                print(f"{done} (it cannot be loaded: {record.error.rstrip('.')}).")
                return 0
            print(f"{record.name} {record.version}: {_status(record).rstrip('.')}.")
            return EXIT_FAILED if command == "enable" and record.error else 0
        if command == "uninstall":
            return _uninstall(host, args.plugin_id, args.yes)
        if command == "install":
            return _install(host, args.source, args.index, args.yes)
        return _update(host, args.plugin_id, args.index, args.yes)
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _status(record: PluginRecord) -> str:
    return f"{record.status} — {record.error}" if record.error else record.status


def _studio_s_own(name: str, command: str) -> str:
    """Why ``command`` does not take ``name``, one of the ids that name Studio itself ("studio")."""
    done = {"uninstall": "cannot be uninstalled", "disable": "cannot be disabled", "enable": "are always on",
            "update": "are updated with Studio"}[command]
    return f"{name!r} is Studio itself, not a plugin: Studio's own generators and post-processors {done}."


BUILT_IN = "built in"  # the status and origin of Studio's own generators and post-processors


def _studio_row(host: PluginHost) -> dict[str, Any]:
    """Studio's own generators and post-processors, registered as a plugin's are: listed as one, always on."""
    from studio import __version__

    own = {kind: [c.id for c in host.registry.contributions(kind) if c.builtin] for kind in (GENERATOR, POSTPROCESSOR)}
    return {"id": BUILTIN_PLUGIN, "name": "Studio", "version": __version__, "status": BUILT_IN, "error": "",
            "author": "", "homepage": "", "permissions": "", "generators": own[GENERATOR],
            "postprocessors": own[POSTPROCESSOR], "installed_by": BUILT_IN}


def _list(host: PluginHost, as_json: bool) -> int:
    rows = [_studio_row(host)]
    for record in host.records:
        manifest = record.found.manifest
        rows.append({
            "id": record.id, "name": record.name, "version": record.version, "status": record.status,
            "error": record.error, "author": manifest.author if manifest else "",
            "homepage": manifest.homepage if manifest else "",
            "permissions": manifest.permissions.describe() if manifest else "",
            "generators": [c.id for c in manifest.of_kind("generator")] if manifest else [],
            "postprocessors": [c.id for c in manifest.of_kind("postprocessor")] if manifest else [],
            "installed_by": "studio" if record.found.managed else "environment",
        })
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"{row['id']}  {row['name']} {row['version']}  [{row['status']}]")
        details = [f"by {row['author']}" if row["author"] else "",
                   "Studio's own: always on, cannot be disabled or uninstalled" if row["installed_by"] == BUILT_IN
                   else f"permissions: {row['permissions'] or 'none'}",
                   "generators: " + ", ".join(row["generators"]) if row["generators"] else "",
                   "post-processors: " + ", ".join(row["postprocessors"]) if row["postprocessors"] else ""]
        print("    " + " · ".join(d for d in details if d))
        if row["error"]:
            print(f"    {row['error']}")
    if len(rows) == 1:
        print(f"No plugins are installed. Install one with: studio plugins install PATH "
              f"(they go to {host.plugins_dir}).")
    return 0


def _show_plan(text: str) -> None:
    print(escaped(text))  # it quotes the plugin's manifest: a terminal escape in it is printed, not obeyed


def _installer(host: PluginHost):  # noqa: ANN202 - PluginInstaller, imported when needed
    from studio.plugin_host.installer import PluginInstaller

    return PluginInstaller(host.plugins_dir)


def _index_url(given: str | None) -> str:
    if given:
        return given
    from studio.core.settings import load_settings

    url = load_settings().plugin_index
    if not url:
        raise StudioError("No plugin index is set; pass --index URL (or set plugin_index in the settings file).")
    return url


def _install(host: PluginHost, source: str, index: str | None, yes: bool) -> int:
    installer = _installer(host)
    if not index and PLUGIN_ID.fullmatch(source) and not Path(source).expanduser().exists():
        from studio.core.settings import load_settings

        index = load_settings().plugin_index  # a plugin id, not a file: looked up in the index of the settings
        if not index:
            raise StudioError(f"There is no file or folder {source}, and no plugin index is set to look the plugin "
                              f"{source} up in; pass --index URL (or set plugin_index in the settings file).")
    if index:
        from studio.plugin_host.plugin_index import read_index

        listing = read_index(index)
        for sentence in listing.skipped:  # said first: the plugin asked for may be one of them
            say_note(sentence)
        entries = {}
        for entry in sorted(listing.entries, key=lambda e: e.parsed_version):
            entries[entry.name] = entry  # the newest listed version of each plugin
        if source not in entries:
            unread = " that could be read (entries were skipped, as said above)" if listing.skipped else ""
            raise StudioError(f"The plugin index {index} has no plugin called {source!r}{unread}; it offers: "
                              f"{', '.join(sorted(entries)) or 'nothing'}.")
        plan = installer.plan(entries[source], host.taken_ids(), host.taken_contributions(),
                              host.enabled_dependencies())
    else:
        plan = installer.plan(source, host.taken_ids(), host.taken_contributions(), host.enabled_dependencies())
    try:
        _show_plan(plan.describe())
        if not yes:
            if not sys.stdin.isatty():
                return no_terminal_to_ask("installed", f"install {source}")
            if not confirmed("Install?"):
                return declined("installed")
        installer.install(plan)
    finally:
        installer.discard(plan)
    if host.after_install(plan.manifest.id, updated=plan.replaces is not None):  # an update keeps its state
        print(f"Installed {plan.manifest.name} {plan.version} in place of {plan.replaces}; it stays enabled "
              f"(studio plugins disable {plan.manifest.id} turns it off).")
    else:
        print(f"Installed {plan.manifest.name} {plan.version}. It is disabled until you run: "
              f"studio plugins enable {plan.manifest.id}")
    return 0


def _uninstall(host: PluginHost, plugin_id: str, yes: bool) -> int:
    record = host.record(plugin_id)
    if not record.found.managed:
        raise StudioError(f"{record.name} was installed into Python's environment, not by Studio; remove it with: "
                          f"{sys.executable} -m pip uninstall {record.found.distribution}")
    if not yes:  # what it is first: an id no plugin has, or one Studio did not install, is said, not asked
        if not sys.stdin.isatty():
            return no_terminal_to_ask("uninstalled", f"uninstall {plugin_id}")
        if not confirmed(escaped(f"Uninstall {record.name} {record.version} and delete its folder "
                                 f"{host.plugins_dir / plugin_id}?")):
            return declined("uninstalled")
    host.uninstall(plugin_id, _installer(host).uninstall)
    print(f"Removed {record.name} {record.version}.")
    return 0


def _update(host: PluginHost, plugin_id: str | None, index: str | None, yes: bool) -> int:
    from studio.plugin_host.plugin_index import read_index, updates

    url = _index_url(index)
    installed = {r.id: r.version for r in host.records if r.found.managed and (plugin_id in (None, r.id))}
    if plugin_id is not None and plugin_id not in installed:
        raise StudioError(f"No plugin called {plugin_id!r} was installed by Studio.")
    listing = read_index(url)
    for sentence in listing.skipped:
        say_note(sentence)
    newer = updates(listing.entries, installed)
    if not newer:  # a skipped entry may have been a plugin's update: "every plugin" would not be known
        print("No update was found in the entries that could be read." if listing.skipped else
              "Every plugin is up to date.")
        return 0
    if not yes and not sys.stdin.isatty():  # said before any download: a script gets its answer at once
        for entry, current in newer:
            print(escaped(f"{entry.name} {current} → {entry.version} is available."))
        return no_terminal_to_ask("updated", f"update {and_list([entry.name for entry, _ in newer])}")
    installer = _installer(host)
    declined = False
    for entry, current in newer:
        plan = installer.plan(entry, host.taken_ids(), host.taken_contributions(), host.enabled_dependencies())
        try:
            _show_plan(f"Update {entry.name} {current} → {entry.version}:\n{plan.describe()}")
            if yes or confirmed("Update?"):
                installer.install(plan)
                print(f"Updated {entry.name} to {entry.version}.")
            else:
                declined = True
        finally:
            installer.discard(plan)
    host.refresh()
    return EXIT_FAILED if declined else 0
