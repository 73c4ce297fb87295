"""``studio models list|import|link|download|remove|recommended``: the model library, headless."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.cli_confirm import confirmed, declined, no_terminal_to_ask
from studio.cli_exit import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED
from studio.cli_notes import say_note
from studio.core.errors import InvalidRequest, JobCancelledError, StudioError, os_reason
from studio.core.model_library import (
    KIND_FOLDERS,
    MISSING,
    WEIGHT_SUFFIXES,
    LibraryItem,
    format_size,
    scan_library,
    unhashed,
    with_hashes,
)
from studio.core.paths import studio_paths
from studio.core.settings import Settings, load_settings
from studio.core.settings_writing import update_settings

LISTED_KINDS = (*KIND_FOLDERS, "image-encoder", "annotator", "unknown")  # every kind the library tells apart
HASH_NOTICE_BYTES = 256 * 1024**2  # new files to hash before a bar is shown: about a quarter of a second's reading


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models", help="list, import, download or remove models",
        description="Studio's model library: every checkpoint, LoRA, VAE, upscaler and weights file in the models "
                    "folder and in linked folders, identified by content. Studio uses only "
                    "safetensors files, which cannot run code; import --convert turns a PyTorch checkpoint into one, "
                    "reading tensors only.")
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every model with its kind, size, short hash and source")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--kind", type=str.lower, choices=LISTED_KINDS, metavar="KIND",
                         help=f"only this kind: {', '.join(LISTED_KINDS)}")
    listing.add_argument("--no-hash", action="store_true", help="skip hashing (hashes are cached once computed)")
    imp = actions.add_parser("import", help="copy a .safetensors file or a diffusers folder into the library",
                             description="Check a model by content (safetensors only), detect its kind and copy "
                                         "it into the models folder under that kind's folder.")
    imp.add_argument("path", type=Path, metavar="PATH", help="a .safetensors file or a diffusers model folder")
    imp.add_argument("--convert", action="store_true",
                     help="a pickle checkpoint (.ckpt/.pt/.pth/.bin): convert it to safetensors first, reading "
                          "tensors only with torch.load(weights_only=True)")
    link = actions.add_parser("link", help="use another tool's models folder (AUTOMATIC1111, ComfyUI, InvokeAI) "
                                           "in place, without copying",
                              description="Add a folder of models (or one model file) to the library where it is: "
                                          "nothing is copied, and Studio never deletes files there (`studio models "
                                          "remove PATH` unlinks it). ComfyUI's extra_model_paths.yaml links each "
                                          "folder it names, and so does linking a ComfyUI folder that holds one.")
    link.add_argument("path", type=Path, metavar="PATH",
                      help="another tool's models folder, one model file, or ComfyUI's extra_model_paths.yaml")
    down = actions.add_parser("download", help="download a model from the Hugging Face hub by repo id",
                              description="Download the safetensors files of a hub repository into the models "
                                          "folder, resuming an interrupted download.")
    down.add_argument("repo_id", metavar="REPO_ID", help="e.g. stabilityai/sd-turbo")
    down.add_argument("--revision", help="branch, tag or commit (default: main)")
    down.add_argument("--endpoint", help="hub address (default: $HF_ENDPOINT or huggingface.co)")
    down.add_argument("-y", "--yes", action="store_true",
                      help="download without asking (needed where there is no terminal to ask on: scripts, pipes)")
    remove = actions.add_parser("remove", help="delete a model from the models folder, or unlink a linked folder",
                                description="Delete a model in Studio's models folder (it asks first, saying what "
                                            "and where), or unlink a linked folder or file (its files stay).")
    remove.add_argument("name", metavar="NAME", help="a name from `studio models list`, or a path")
    remove.add_argument("-y", "--yes", action="store_true",
                        help="remove without asking (needed where there is no terminal to ask on: scripts, pipes)")
    actions.add_parser("recommended", help="starter models worth downloading, with their sizes")


def run_models(args: argparse.Namespace) -> int:
    paths = studio_paths()
    settings = load_settings(paths)
    try:
        command = args.models_command
        if command == "list":
            return _list(settings, args.kind, args.json, not args.no_hash)
        if command == "import":
            return _import(settings, args.path, args.convert)
        if command == "link":
            return _link(settings, args.path)
        if command == "download":
            return _download(settings, args.repo_id, args.revision, args.endpoint, args.yes)
        if command == "remove":
            return _remove(settings, args.name, args.yes)
        return _recommended()
    except (JobCancelledError, KeyboardInterrupt):  # a cancel, or Ctrl+C
        stopped = "download stopped; run the same command again to resume" if args.models_command == "download" \
            else "stopped; nothing was changed" if args.models_command == "import" else "stopped"
        print(f"studio: {stopped}.", file=sys.stderr)
        return EXIT_CANCELLED
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _items(settings: Settings, hashes: bool) -> list[LibraryItem]:
    items = scan_library(settings.models_dir, settings.extra_model_paths)
    if not hashes:
        return items
    cache = studio_paths().cache_dir / "model-hashes.json"
    new = unhashed(items, cache)
    size = sum(item.size for item in new)
    if size < HASH_NOTICE_BYTES or not sys.stderr.isatty():  # a script's stderr is not for bars
        return with_hashes(items, cache)
    from tqdm import tqdm

    # Four new 1 GB files kept the command silent for 8.6 s.
    print(f"Hashing {len(new)} new model{'s' if len(new) > 1 else ''} ({format_size(size)}), once: hashes are kept "
          "(--no-hash lists without them)…", file=sys.stderr)
    with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False,
              dynamic_ncols=True) as bar:
        return with_hashes(items, cache, progress=bar.update)


def _list(settings: Settings, kind: str | None, as_json: bool, hashes: bool) -> int:
    every = _items(settings, hashes)
    items = [i for i in every if not kind or i.kind == kind]
    for gone in (i for i in every if i.label == MISSING and i not in items):  # its models would be left out unsaid
        say_note(f"The linked {'folder' if gone.path.suffix.lower() not in WEIGHT_SUFFIXES else 'file'} {gone.path} "
                 "is not there (moved, or on a drive that is not plugged in), so its models are not listed; they come "
                 f"back when it is, or unlink it with `studio models remove {gone.path}`.")
    if as_json:  # JSON whatever is found: a script reading it got a sentence where no model had the kind
        print(json.dumps([dict(name=i.name, kind=i.kind, family=i.family, label=i.label, size=i.size, hash=i.hash,
                               path=str(i.path), source=i.source, problem=i.problem,
                               duplicate_of=str(i.duplicate_of) if i.duplicate_of else None) for i in items], indent=1))
        return 0
    if kind and every and not items:
        print(f"No models of the kind {kind} in the library; `studio models list` shows its {len(every)} other "
              f"model{'s' if len(every) > 1 else ''}.")
        return 0
    if not items:
        print(f"No models in {settings.models_dir}. Import one with `studio models import PATH`, download one with "
              "`studio models download REPO_ID` (see `studio models recommended`), or link another tool's folder "
              "with `studio models link PATH`.")
    else:
        width = max(len(i.name) for i in items)
        for item in items:
            print(f"{item.name:<{width}}  {item.label:<22} {format_size(item.size):>9}  {item.hash or '-':<10}  "
                  f"{item.source}")
            if item.duplicate_of:
                print(f"{'':<{width}}  same file as {item.duplicate_of}")
            if item.problem:
                print(f"{'':<{width}}  {item.problem}")
    if not kind:
        _list_unfinished(settings)
    return 0


def _list_unfinished(settings: Settings) -> None:
    """Downloads stopped half-way, one line each: they were on disk, unsaid, until downloaded again."""
    from studio.services.unfinished_downloads import unfinished_downloads

    for download in unfinished_downloads(settings.models_dir):
        print(f"Unfinished download {download.repo_id}: {download.progress}; `studio models download "
              f"{download.repo_id}` resumes it, or delete {download.folder} to discard it.")


def _import(settings: Settings, path: Path, convert: bool) -> int:
    from studio.core.weight_files import PICKLE, TORCH_ZIP, sniff_weights_format
    from studio.services.model_conversion import convert_and_import
    from studio.services.model_imports import import_model

    hashes = studio_paths().cache_dir / "model-hashes.json"
    is_pickle = path.is_file() and sniff_weights_format(path) in (PICKLE, TORCH_ZIP)
    if is_pickle and convert:
        print(f"Converting {path.name} to safetensors (tensors only)…", file=sys.stderr)
        try:
            result = convert_and_import(path, settings.models_dir, hash_cache=hashes)
        except StudioError as exc:  # converted, then refused: what the conversion left out is news still
            print(f"studio: {exc}", file=sys.stderr)
            for note in getattr(exc, "__notes__", ()):
                say_note(note)
            return EXIT_BAD_INPUT
    else:
        try:
            with _progress_line() as show:
                result = import_model(path, settings.models_dir, hash_cache=hashes, progress=lambda done, total: show(
                    f"Copying {path.name}: {done * 100 // max(total, 1)}%"), linked=settings.extra_model_paths)
        except StudioError as exc:
            if is_pickle:
                raise StudioError(f"{exc} Or import it with --convert, which does both.") from None
            raise
    if result.unrecorded:  # the copy is done and usable; only its record is not, which a script should hear of
        print(f"studio: {result.unrecorded}", file=sys.stderr)
        return EXIT_FAILED
    if result.copied:
        print(f"Imported {result.item.name} ({result.item.label}) to {result.item.path}.")
        for note in result.note.splitlines():  # what a conversion left out; a style file's new name
            say_note(note)
    else:  # "already in the library as …", then what a conversion left out
        first, *more = result.note.splitlines() or [""]
        print(first)
        for note in more:
            say_note(note)
    return 0


@contextmanager
def _progress_line() -> Iterator[Callable[[str], None]]:
    """A line on stderr redrawn in place, ended however the work ends: an error's "studio: …" (or Ctrl+C's) was
    written onto the end of "Copying x: 39%"."""
    shown = False

    def show(text: str) -> None:
        nonlocal shown
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
        shown = True

    try:
        yield show
    finally:
        if shown:
            print(file=sys.stderr)


def _link(settings: Settings, path: Path) -> int:
    from studio.core.comfyui_paths import is_extra_paths_file
    from studio.core.model_library import detect_layout, item_for_file
    from studio.core.paths import real_path
    from studio.services.model_links import link_paths

    # One model file linked in place: it said "0 usable model(s) found there" of a usable one.
    item = item_for_file(path, "linked") if path.is_file() and not is_extra_paths_file(path) else None
    if item is not None and not item.usable:
        raise StudioError(f"{item.problem} Nothing was linked.")

    added: list[Path] = []
    notes: list[str] = []

    def link(current: Settings) -> bool:  # under the settings lock, with the file as it is now
        linking = link_paths(path, current.extra_model_paths, current.models_dir)
        added[:], notes[:] = linking.added, linking.notes
        current.extra_model_paths = linking.links
        return bool(linking.added)

    if not _links_saved(link, f"{path} was not linked"):
        return EXIT_FAILED
    for note in notes:  # a folder the yaml names that is not there
        say_note(note)
    if path.is_file() and item is None:  # ComfyUI's extra_model_paths.yaml: the folders it names
        for folder in added:
            print(f"Linked {folder} (named in {path.name}): {_found_in(folder)}.")
        if not added:
            print(f"The folders {path.name} names are linked already.")
        return 0
    tool = detect_layout(path) if item is None else ""
    said = f"Linked {path}" if real_path(path) in added else f"{path} is already linked"
    said += f" ({tool} layout)" if tool else ""
    if item is not None:
        print(f"{said}: {item.label}, listed as {item.name}.")
        return 0
    print(f"{said}: {_found_in(path)}.")
    for folder in (f for f in added if f != real_path(path)):  # named in the folder's extra_model_paths.yaml
        print(f"Linked {folder} (named in its extra_model_paths.yaml): {_found_in(folder)}.")
    return 0


def _found_in(folder: Path) -> str:
    from studio.services.model_links import found_there

    return found_there(scan_library(folder))


def _remove(settings: Settings, name: str, yes: bool) -> int:
    from studio.services.model_removal import remove_model, removal_words, what_removing_does

    # what it is first: a name that is no model, or a file Studio would not delete, is said, not asked
    item, links = what_removing_does(name, settings.models_dir, settings.extra_model_paths)
    unlinks = links != settings.extra_model_paths
    question, done = (f"Unlink {item.path} (its files stay where they are)?", "") if unlinks else \
        removal_words(item, settings.models_dir)  # a link in the models folder goes as a link, never followed
    if not yes:
        if not sys.stdin.isatty():
            return no_terminal_to_ask("removed", f"remove {name}")
        if not confirmed(question):
            return declined("unlinked" if unlinks else "removed")
    notes: list[str] = []
    item, links = remove_model(name, settings.models_dir, settings.extra_model_paths, notes)
    if links != settings.extra_model_paths:
        unlinked = set(settings.extra_model_paths) - set(links)

        def unlink(current: Settings) -> bool:  # only this one: a folder another command linked meanwhile stays
            current.extra_model_paths = [p for p in current.extra_model_paths if p not in unlinked]
            return True

        if not _links_saved(unlink, f"{item.path} is still linked"):
            return EXIT_FAILED
        print(f"Unlinked {item.path} (its files are untouched).")
    else:
        print(done)
    for note in notes:
        say_note(note)
    return 0


def _links_saved(change: Callable[[Settings], bool], not_done: str) -> bool:
    """Change the settings file, where the linked folders are listed, as one step (another command may change it
    at the same time); where it cannot be written (read-only, a full disk), one sentence saying what was not done,
    since the change lived only there."""
    try:
        update_settings(change)
    except InvalidRequest:  # the change's own refusal (Studio's own models folder), said as it is
        raise
    except StudioError as exc:
        cause = exc.__cause__
        reason = os_reason(cause) if isinstance(cause, OSError) else str(exc).rstrip(".")
        print(f"studio: {not_done}: Studio lists its linked folders in the settings file "
              f"{studio_paths().settings_file}, which could not be written ({reason}).", file=sys.stderr)
        return False
    return True


def _download(settings: Settings, repo_id: str, revision: str | None, endpoint: str | None, yes: bool) -> int:
    from studio.services.hub_connection import HubUnavailable
    from studio.services.model_downloads import DownloadProgress, download_model, plan_download

    if not yes and not sys.stdin.isatty():  # before the hub is asked anything: a script gets its answer at once
        return no_terminal_to_ask("downloaded", f"download {repo_id}")
    try:
        plan = plan_download(repo_id, settings.models_dir, revision=revision, endpoint=endpoint)
    except HubUnavailable as exc:  # the command line's way to the other source of a model
        raise HubUnavailable(f"{exc} Import a file you already have with `studio models import PATH`.") from exc
    print(f"{repo_id}: {len(plan.files)} file(s), {format_size(plan.total_bytes)} "
          f"({format_size(plan.already_bytes)} already here) into {plan.destination}")
    if not yes and not confirmed("Download?"):
        return EXIT_FAILED

    def line(event: DownloadProgress) -> str:
        percent = event.done_bytes * 100 // max(event.total_bytes, 1)
        return (f"{percent:3d}%  {format_size(event.done_bytes)} of {format_size(event.total_bytes)}  "
                f"({event.files_done}/{event.files_total} files) {event.file[-40:]:<40}")

    notes: list[str] = []
    with _progress_line() as show:
        target = download_model(plan, progress=lambda event: show(line(event)), endpoint=endpoint, notes=notes,
                                hash_cache=studio_paths().cache_dir / "model-hashes.json")
    print(f"Downloaded {repo_id} to {target}.")
    for note in notes:
        say_note(note)
    return 0


def _recommended() -> int:
    from studio.core.starter_models import STARTER_MODELS

    for model in STARTER_MODELS:
        print(f"{model.repo_id:<44} {model.kind:<10} {model.size_label:>16}  {model.why}")
    print("Download one with: studio models download REPO_ID")
    return 0
