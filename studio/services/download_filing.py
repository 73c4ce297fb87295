"""Filing a finished Hugging Face download into the library by kind, as an import is (or as one folder where it
cannot be filed by kind)."""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import InvalidRequest, ModelError, StudioError
from studio.core.model_library import HUB_ORIGIN
from studio.core.models import MODEL_INDEX
from studio.services.import_records import record_import
from studio.services.model_copying import remove_quietly
from studio.services.model_imports import import_model


def file_download(staged: Path, models_dir: Path, repo_id: str, *,
                  hash_cache: Path | None = None) -> tuple[Path, str]:
    """A finished hub download (``staged``, a folder out of the library's sight) filed by kind as an import is: a
    repo of one weights file as that file (a LoRA into loras/), a model folder (a diffusers pipeline, a VAE, a
    ControlNet) whole. Returns where it is in the library and a sentence for the person, or "". The same model in
    the library already is not kept twice (the download is deleted, and the one there returned); a name another
    model has takes the repo's owner before it (``owner--name``), since models are picked by name. A repo Studio
    cannot file by kind (several models, or none it knows) stays one folder, ``<models>/<name>``, as it is listed.
    InvalidRequest where it cannot be filed: the download stays in ``staged`` for the next try."""
    owner, name = repo_id.split("/")
    single = _single_weights_file(staged)
    if single is None and not _is_model_folder(staged):
        return _keep_as_folder(staged, models_dir, repo_id), ""
    source = single or staged
    try:
        result = import_model(source, models_dir, hash_cache=hash_cache, move=True, unusable_too=True)
        note = ""
    except ModelError:  # not a kind Studio files (or one it cannot use): listed where it is, with why
        return _keep_as_folder(staged, models_dir, repo_id), ""
    except InvalidRequest:  # the name is another model's: the owner's before it tells the two apart
        renamed = source.with_name(f"{owner}--{source.name}")
        source.rename(renamed)
        try:
            result = import_model(renamed, models_dir, hash_cache=hash_cache, move=True, unusable_too=True)
        except StudioError:
            renamed.rename(source)  # as the next try's plan finds it
            raise
        note = f"The library has another model named {result.item.name.removeprefix(f'{owner}--')}, so " \
               f"{repo_id} is listed as {result.item.name}."
    if not result.copied:
        remove_quietly(staged)
        return result.item.path, (f"{repo_id} is the same model as {result.item.path}, which is in the library "
                                  "already; the download was not kept twice.")
    if single is not None:
        unrecorded = record_import(models_dir, result.item.path, f"{HUB_ORIGIN}{repo_id}")
        note = " ".join(filter(None, (note, unrecorded)))  # it is filed and usable: the download is not redone
        remove_quietly(staged)  # the repo's other files (configs, its download record) went with the file's folder
    return result.item.path, note


def _single_weights_file(folder: Path) -> Path | None:
    """The one safetensors file of a download that is not a model folder (a LoRA's, a checkpoint's repo)."""
    if _is_model_folder(folder):
        return None
    weights = [p for p in folder.rglob("*.safetensors") if p.is_file() and ".cache" not in p.relative_to(folder).parts]
    return weights[0] if len(weights) == 1 else None


def _is_model_folder(folder: Path) -> bool:
    return (folder / MODEL_INDEX).is_file() or (folder / "config.json").is_file()


def _keep_as_folder(staged: Path, models_dir: Path, repo_id: str) -> Path:
    owner, name = repo_id.split("/")
    for place in (models_dir / name, models_dir / f"{owner}--{name}"):
        if not place.exists():
            staged.rename(place)
            return place
    raise InvalidRequest(f"{models_dir / name} and {models_dir / f'{owner}--{name}'} already hold other models; move "
                         f"one of them away and run the download again to file {repo_id} (it is kept in {staged} "
                         "meanwhile).")
