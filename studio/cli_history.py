"""``studio history``: search, show and re-run what Studio made, from the same history the window shows."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from studio.cli_device import device_option
from studio.cli_exit import EXIT_BAD_INPUT, EXIT_FAILED
from studio.cli_notes import say_note
from studio.cli_outputs import add_output_flags
from studio.cli_parser import CommandParser
from studio.core.errors import InvalidRequest, StudioError
from studio.core.events import format_seconds
from studio.core.hires import HiresFix, hires_summary
from studio.core.safe_text import escaped
from studio.core.settings_checks import DEVICE_VALUES
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR

if TYPE_CHECKING:  # imported when used: `studio` with no command opens the window, and should start fast
    from studio.core.requests import GenerationRequest
    from studio.plugin_host.host import PluginHost
    from studio.plugin_host.registry import Registry
    from studio.services.history_store import HistoryEntry, HistoryStore

PROMPT_COLUMN = 60


def add_history_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``history search|show|rerun`` to the ``studio`` command's subcommands."""
    history = commands.add_parser("history", help="search, show and re-run earlier jobs",
                                  description="Every job Studio ran: search it, show one entry, run one again.")
    actions = history.add_subparsers(dest="history_command", metavar="ACTION", required=True,
                                     parser_class=_ActionParser)
    search = actions.add_parser("search", help="find entries by words in their prompt or negative prompt",
                                description="List entries whose prompt or negative prompt has all these words "
                                            "(the last one may be unfinished), newest first. A word that starts "
                                            "with '-' goes after --: studio history search -- -known",
                                dashed_words=True)
    search.add_argument("text", nargs="*", help="words to find (none: every entry)")
    search.add_argument("--limit", type=int, default=20, help="at most this many entries (default 20)")
    search.add_argument("--model", help="only entries made with this model (its name; case does not matter)")
    search.add_argument("--starred", action="store_true", help="only starred entries")
    search.add_argument("--json", action="store_true", help="print a JSON list of entries")
    show = actions.add_parser("show", help="everything recorded about one entry")
    show.add_argument("id", type=int, help="the entry's id (from history search)")
    show.add_argument("--json", action="store_true", help="print the entry as JSON")
    rerun = actions.add_parser("rerun", help="make an entry's picture again, exactly",
                               description="Run an entry again with the same model, seed and settings (and its "
                                           "source picture and mask); the new job is recorded in the history too.")
    rerun.add_argument("id", type=int, help="the entry's id (from history search)")
    add_output_flags(rerun)
    rerun.add_argument("--device", default=None, type=device_option, metavar="DEVICE",
                       help=f"where to run: {DEVICE_VALUES} (default: the settings' device)")


class _ActionParser(CommandParser):
    """A ``studio history`` action's parser. ``dashed_words``: it takes words, and one starting with '-' ("-known")
    is taken by argparse for an option it does not know; the error then says how to give it (after ``--``), not
    only "unrecognized arguments". Not read as a word to find: to someone used to search engines "-known" means
    "without known", which the search does not do."""

    def __init__(self, *args: Any, dashed_words: bool = False, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.dashed_words = dashed_words

    def unrecognized(self, parsed: Any, args: list[str], extras: list[str]) -> NoReturn:  # noqa: ANN401
        dashed = [arg for arg in extras if arg.startswith("-") and arg != "-"]
        if self.dashed_words and dashed:
            words = [arg for arg in args if arg in dashed or arg in parsed.text]
            self.error(f"unrecognized arguments: {' '.join(dashed)}; to find words that start with '-', give the "
                       f"words after --: {self.prog} -- {' '.join(words)}")
        super().unrecognized(parsed, args, extras)


def run_history(args: argparse.Namespace) -> int:
    """Run one ``studio history`` action; every refusal is one sentence on stderr."""
    from studio.services.history_errors import HistoryError

    try:
        if args.history_command == "search":
            return _search(args)
        if args.history_command == "show":
            return _show(args)
        return _rerun(args)
    except InvalidRequest as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except HistoryError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def open_history(*, for_reading: bool = False) -> HistoryStore:
    """The person's history store; its notice (a damaged file set aside) goes to stderr. ``for_reading``: where
    Studio may not write to it (a read-only folder or disk), it is opened read-only (``store.read_only``)."""
    from studio.services.history_errors import HistoryNotWritable
    from studio.services.history_store import HistoryStore, default_history_path

    path = default_history_path()
    try:
        store = HistoryStore(path)
    except HistoryNotWritable:
        if not for_reading:
            raise
        try:
            store = HistoryStore(path, read_only=True)
        except HistoryNotWritable:  # SQLite's "unable to open database file" again (a schema's sentence stays)
            raise HistoryNotWritable(f"The history database {path} could not be opened, for writing or for "
                                     "reading; check that it is there and that Studio may read it.") from None
    if store.notice:
        say_note(store.notice)
    return store


def try_open_history() -> HistoryStore | None:
    """open_history, or None with a note when the history cannot be opened (the job runs anyway)."""
    from studio.services.history_errors import HistoryError

    try:
        return open_history()
    except HistoryError as exc:
        say_note(f"{exc} This job is not recorded in the history.")
        return None


def close_history(store: HistoryStore) -> None:
    """Close the store a command recorded its job in. Entries kept while another program held the database's lock
    are added first: a command waits for the lock longer than the window's engine (saying why), then says whether
    they were added (journaled ones of an earlier Studio among them) or why not."""
    if said := store.close(wait_for_pending=30.0, on_wait=say_note):
        say_note(said)


def close_read_history(store: HistoryStore) -> None:
    """Close a store a command only read from, without waiting for another program's lock: entries kept while it
    is held (an earlier Studio's, from the journal) are tried once and otherwise stay journaled, added by a later
    open; what was not added yet (so not listed) is said."""
    if said := store.close(wait_for_pending=0):
        say_note(said)


def _entry_or_refuse(store: HistoryStore, entry_id: int) -> HistoryEntry:
    entry = store.get(entry_id)
    if entry is None:
        raise InvalidRequest(f"There is no history entry {entry_id}; `studio history search` lists them.")
    return entry


def _search(args: argparse.Namespace) -> int:
    from studio.services.history_query import HistoryQuery

    if args.limit < 1:
        raise InvalidRequest(f"--limit must be at least 1, not {args.limit}.")
    store = open_history(for_reading=True)
    query = HistoryQuery(text=" ".join(args.text), model=args.model, starred_only=args.starred)
    entries = store.search(query, limit=args.limit)
    total = store.count(query)
    close_read_history(store)
    if args.json:
        print(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print("No history entries match." if query != HistoryQuery() else "The history is empty.")
        return 0
    print(f"{'ID':>6}  {'DATE':16}  {'MODEL':20}  {'SEED':>10}  {'OUTCOME':9}  PROMPT")
    for e in entries:
        star = "*" if e.starred else " "
        model = e.model_name or e.generator  # a plugin's job that failed before its first picture has no model
        print(f"{e.id:>6}{star} {_date(e.created):16}  {_clip(_one_line(model), 20):20}  {e.seed:>10}  "
              f"{e.outcome:9}  {_clip(_one_line(e.prompt), PROMPT_COLUMN)}")
    if total > len(entries):
        say_note(f"{len(entries)} of {total} entries are shown; --limit shows more.")
    return 0


def _show(args: argparse.Namespace) -> int:
    from studio.cli_control import guide_lines
    from studio.cli_inspect import lora_and_vae_lines, post_chain

    store = open_history(for_reading=True)
    entry = _entry_or_refuse(store, args.id)
    close_read_history(store)
    if args.json:
        print(json.dumps(asdict(entry), ensure_ascii=False, indent=2))
        return 0
    plugin_job = entry.generator not in ("", "diffusers")
    lines = [f"Entry {entry.id}{'  (starred)' if entry.starred else ''}",
             f"  Date:        {_date(entry.created, seconds=True)}",
             f"  Outcome:     {entry.outcome}" + (f": {_safe(entry.message)}" if entry.message else ""),
             f"  Prompt:      {_indented(entry.prompt)}",
             f"  Negative:    {_indented(entry.negative_prompt)}",
             f"  Model:       {_safe(entry.model_name)}" + (f" (hash {entry.model_hash})" if entry.model_hash else ""),
             *([f"  Model path:  {_safe(entry.model_path)}"] if entry.model_path or not plugin_job else []),
             *(f"  {label + ':':12} {_safe(text)}" for label, text in lora_and_vae_lines(
                 entry.params.get("loras"), entry.params.get("vae"), entry.params.get("vae_hash"))),
             # A plugin's generator takes no steps, sampler nor CFG scale (its job's row holds Studio's defaults).
             "  Settings:    " + ("" if plugin_job else f"Steps {entry.steps}, Sampler {_safe(entry.sampler)}, "
                                                         f"CFG scale {entry.cfg_scale:g}, ")
             + f"Seed {entry.seed}, Size {entry.width}x{entry.height}"
             + (f", Strength {entry.strength:g}" if entry.strength is not None else ""),
             f"  Generator:   {_plugin_prefix(entry)}{_safe(entry.generator)} "
             f"{_safe(entry.generator_version)}".rstrip(),
             f"  Post-processing: {_safe(post_chain(entry.postprocess)) or 'none'}"]
    if (hires := HiresFix.from_record(entry.params.get("hires"))) is not None:
        lines.append(f"  Hires fix:   {_safe(hires_summary(hires, entry.width, entry.height))}")
    lines += [f"  {label + ':':12} {_safe(text)}" for label, text in guide_lines(entry.params.get("controls"), True)]
    if isinstance(entry.params.get("generator_params"), dict):
        lines.append(f"  Generator settings: {_settings(entry.params['generator_params'])}")
    if isinstance(entry.params.get("precision"), str):
        lines.append(f"  Precision:   {_safe(entry.params['precision'])}")
    if entry.elapsed is not None:
        lines.append(f"  Took:        {format_seconds(entry.elapsed)}")
    for label, path in (("Image", entry.image_path), ("Source", entry.source_image_path),
                        ("Mask", entry.source_mask_path)):
        if path:
            missing = "" if Path(path).is_file() else "  (missing)"
            lines.append(f"  {label + ':':12} {_safe(path)}{missing}")
    if entry.params:
        lines.append(f"  Parameters:  {_safe(json.dumps(entry.params, ensure_ascii=False))}")
    print("\n".join(lines))
    return 0


def _rerun(args: argparse.Namespace) -> int:
    from studio.cli_addon_files import find_files
    from studio.cli_denoising import RECORDED, check_denoising_steps
    from studio.cli_device import check_device, device_fallback_note, device_given
    from studio.cli_generate import check_post_pictures, say_if_compile_does_nothing, say_unless_the_job_will
    from studio.cli_job import run_job
    from studio.cli_outputs import check_outputs
    from studio.cli_plugins import open_host
    from studio.core.environment import GeneratorEnvironment
    from studio.core.parameters import MissingPicture
    from studio.core.paths import studio_paths
    from studio.core.requests import prepare_request
    from studio.core.settings import load_settings
    from studio.services.changed_files import changed_file_warnings
    from studio.services.history_reuse import request_for_entry
    from studio.services.outputs import OutputStore

    store = open_history(for_reading=True)
    entry = _entry_or_refuse(store, args.id)
    if store.read_only:  # read where it may not be written: the run goes ahead, unrecorded
        say_note(f"Studio may not write to the history database {store.path}; this job is not recorded in the "
                 "history.")
    paths = studio_paths()
    settings = load_settings(paths)
    request = request_for_entry(entry, settings)
    plugins = open_host(safe_mode=args.safe_mode)
    # The entry's generator and steps there (said as generate says them: a switched-off plugin, how to switch it on)
    # before -o's "already exists", and before the engine starts (which said only that no such generator is there).
    _check_still_there(plugins, entry.id, GENERATOR, [request.generator], args.safe_mode)
    _check_still_there(plugins, entry.id, POSTPROCESSOR, [step.processor for step in request.post], args.safe_mode)
    try:  # a rerun without one of its steps would not make the entry's picture again
        check_post_pictures(request.post, plugins.registry)
    except MissingPicture as exc:
        raise InvalidRequest(f"{exc} Put it back there to run entry {entry.id} again.") from None
    check_outputs([args.output], overwrite=args.overwrite, reads=_pictures_read(entry, request, plugins.registry),
                  outputs_dir=settings.outputs_dir, history=store)
    check_device(args.device)
    env = GeneratorEnvironment.from_settings(settings, paths, args.device)
    for warning in changed_file_warnings(entry, env.models_root, paths.cache_dir / "model-hashes.json",
                                         linked=settings.extra_model_paths):
        say_note(warning)  # it names recorded files: data, shown escaped
    # Its LoRAs, VAE and ControlNets found as generate finds them (in linked folders, by alias), not only where the
    # engine looks (the models folder, a path): the warnings above count those as there.
    if request.generator == "diffusers":
        loras, vae, controls, _ = find_files(request.loras, request.vae, request.controls, settings)
        request = replace(request, loras=loras, vae=vae, controls=controls)
    # Steps x strength that run no step said as generate says them (after every value's range), of the entry's.
    prepared = prepare_request(request, check_denoising=lambda checked: check_denoising_steps(
        RECORDED, checked, recorded_in=f"history entry {entry.id}"))
    say_unless_the_job_will(prepared.notes, prepared.request)  # not those the job says again after "Saved"
    if (note := device_fallback_note(args.device, settings.device)) and prepared.request.generator == "diffusers":
        say_note(note)
    with device_given(args.device):  # the speed is the settings' (the entry's device may differ)
        say_if_compile_does_nothing(prepared.request, env)
    try:  # kept in the outputs folder, as the window keeps it, whether or not the history may record it
        with device_given(args.device):
            return run_job(prepared.request, env, [args.output], output_store=OutputStore(settings.outputs_dir),
                           history=None if store.read_only else store, plugins=plugins, overwrite=args.overwrite,
                           recorded_precision=recorded if isinstance(recorded := entry.params.get("precision"), str)
                           else "")
    finally:
        close_history(store)


def _check_still_there(plugins: PluginHost, entry_id: int, kind: str, names: list[str], safe_mode: bool) -> None:
    """Each generator or post-processor the entry was made with is installed and enabled. Said of the entry, not as
    generate says it: rerun has no --generator or --post to pick another. In safe mode, which loads no plugin,
    a plugin's is said to be off for that."""
    from studio.cli_plugin_flags import check_chosen
    from studio.plugin_host.host import DISABLED, SAFE_MODE

    what = "generator" if kind == GENERATOR else "post-processor"
    for name in names:
        if plugins.registry.has(kind, name):
            continue
        plugin_id, owner = plugins.taken_contributions().get((kind, name), ("", ""))
        status = next((record.status for record in plugins.records if record.id == plugin_id), "") if plugin_id \
            else ""
        if status == DISABLED:
            check_chosen(plugins, kind, [name], "")  # says which plugin to switch on, and how
        made = f"Entry {entry_id} was made by the {what} {name!r}"
        if safe_mode and status == SAFE_MODE:
            raise InvalidRequest(f"{made} of the plugin {owner}, and --safe-mode switched every plugin off; run it "
                                 "without --safe-mode to run it again.")
        if safe_mode and not plugin_id:
            raise InvalidRequest(f"{made}, which is not installed, and --safe-mode switches every plugin off; install "
                                 "it and run it without --safe-mode to run it again.")
        raise InvalidRequest(f"{made}, which is not installed (or switched off); install or enable it to run it "
                             "again.")


def _pictures_read(entry: HistoryEntry, request: GenerationRequest, registry: Registry) -> list[tuple[str, Path]]:
    """The files a rerun of the entry reads, as check_outputs takes them: its source picture and mask, its guides'
    control pictures, and those given to its generator's and chain steps' parameters."""
    from studio.cli_outputs import param_pictures
    from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR

    reads = [(f"the {what} of entry {entry.id}", Path(path)) for what, path in
             (("source picture", entry.source_image_path), ("mask", entry.source_mask_path)) if path]
    reads += [(f"a control picture of entry {entry.id}", Path(guide.image_path))
              for guide in request.controls if guide.image_path]
    reads += [(f"the {param.title.lower()} of entry {entry.id}", path)
              for param, path in param_pictures(request.params, registry, GENERATOR, request.generator)]
    for step in request.post:
        reads += [(f"the {param.title.lower()} of entry {entry.id}'s {registry.title(POSTPROCESSOR, step.processor)}",
                   path) for param, path in param_pictures(step.params, registry, POSTPROCESSOR, step.processor)]
    return reads


def _date(created: float, seconds: bool = False) -> str:
    try:
        return datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):  # a time out of range (say, written in ms): not the whole listing
        return "unknown date"


def _safe(text: str) -> str:
    """Recorded text is data: control characters (terminal escapes) are shown escaped, never sent raw."""
    return escaped(text)


def _one_line(text: str) -> str:
    return _safe(text).replace("\n", " / ")


def _indented(text: str) -> str:
    return _safe(text).replace("\n", "\n" + " " * 15)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _plugin_prefix(entry: HistoryEntry) -> str:
    plugin = entry.params.get("plugin")
    return f"{_safe(str(plugin))}/" if plugin else ""


def _settings(values: dict) -> str:
    return ", ".join(f"{_safe(str(k))}: {_safe(str(v))}" for k, v in values.items()) or "defaults"

