"""The embeddings a prompt can name are the ones the model library lists, wherever each tool keeps them."""

from __future__ import annotations

from pathlib import Path

from model_files import lora, write
from studio.core.library_embeddings import embeddings_for, library_embeddings
from studio.core.model_library import scan_library


def embedding(path: Path, width: int = 768) -> Path:
    return write(path, {"emb_params": (2, width)})


def test_embeddings_are_found_in_the_models_folder_and_in_linked_comfyui_a1111_and_invokeai_folders(tmp_path):
    ours = embedding(tmp_path / "models" / "embeddings" / "EasyNegative.safetensors")
    embedding(tmp_path / "ComfyUI" / "models" / "embeddings" / "easynegative.safetensors")  # the same name: ours wins
    for folder in ("checkpoints", "loras"):  # ComfyUI's layout
        (tmp_path / "ComfyUI" / "models" / folder).mkdir()
    comfy = embedding(tmp_path / "ComfyUI" / "models" / "embeddings" / "sub" / "badhands.safetensors")
    a1111 = embedding(tmp_path / "webui" / "embeddings" / "Style-X.safetensors")  # beside A1111's models folder
    (tmp_path / "webui" / "models" / "Stable-diffusion").mkdir(parents=True)
    lora(tmp_path / "webui" / "models" / "Lora" / "not-an-embedding.safetensors")
    # InvokeAI 3/4 file models by base and type: models/sd-1/embedding, models/sdxl/embedding
    invoke = tmp_path / "invokeai"
    (invoke / "models" / "sdxl" / "main").mkdir(parents=True)
    inv = embedding(invoke / "models" / "sd-1" / "embedding" / "InvNeg.safetensors")
    wide = embedding(invoke / "models" / "sd-2" / "embedding" / "InvNeg1024.safetensors", 1024)
    xl = write(invoke / "models" / "sdxl" / "embedding" / "xl_neg.safetensors", {"clip_l": (1, 768),
                                                                                  "clip_g": (1, 1280)})
    linked = [tmp_path / "ComfyUI" / "models", tmp_path / "webui" / "models", invoke]
    found = embeddings_for(tmp_path / "models", linked).files
    assert found == {"easynegative": ours, "badhands": comfy, "style-x": a1111, "invneg": inv, "invneg1024": wide,
                     "xl_neg": xl}
    listed = {i.path for i in scan_library(tmp_path / "models", linked) if i.kind == "embedding"}
    assert set(found.values()) <= listed  # one source of truth: the library lists each one the prompt can use
    assert library_embeddings(scan_library(tmp_path / "models", linked)).files == found


def test_a_job_reads_only_the_files_its_prompts_name(tmp_path, monkeypatch):
    import studio.core.model_library as model_library

    models = tmp_path / "models"
    embedding(models / "embeddings" / "InvNeg768.safetensors")
    embedding(models / "embeddings" / "other.safetensors")
    lora(models / "loras" / "ink.safetensors")
    read: list[str] = []
    item_for_file = model_library.item_for_file
    monkeypatch.setattr(model_library, "item_for_file", lambda path, source: read.append(path.name)
                        or item_for_file(path, source))
    found = embeddings_for(models, (), ("a barn, InvNeg768", "")).files
    assert list(found) == ["invneg768"] and read == ["InvNeg768.safetensors"]


def test_an_embedding_of_any_width_in_a1111s_own_format_is_listed_as_one(tmp_path):
    """A tiny or unusual width is still a textual inversion (the job says when it does not fit the model)."""
    models = tmp_path / "models"
    embedding(models / "embeddings" / "tiny.safetensors", 32)
    write(models / "embeddings" / "two_tokens.safetensors", {"a": (1, 32), "b": (1, 32)})  # could be anything
    items = {i.name: i for i in scan_library(models)}
    assert items["tiny"].kind == "embedding" and items["tiny"].label == "Textual inversion"
    assert items["two_tokens"].kind == "unknown"
    assert list(embeddings_for(models).files) == ["tiny"]


def test_a_pickle_embedding_is_named_back_with_how_to_convert_it(tmp_path):
    import pickle

    webui = tmp_path / "sd-webui"
    for folder in ("Stable-diffusion", "Lora"):
        (webui / "models" / folder).mkdir(parents=True)
    (webui / "embeddings").mkdir()
    (webui / "embeddings" / "bad_prompt_v2.pt").write_bytes(pickle.dumps({"string_to_param": {}}))
    (webui / "models" / "Lora" / "old_lora.pt").write_bytes(pickle.dumps({}))  # a pickle, but no embedding
    embedding(tmp_path / "models" / "embeddings" / "converted.safetensors")
    (tmp_path / "models" / "embeddings" / "converted.pt").write_bytes(pickle.dumps({}))  # converted already: used
    found = embeddings_for(tmp_path / "models", [webui], ("a barn", "bad_prompt_v2, old_lora, converted"))
    assert list(found.files) == ["converted"]
    assert found.refused == {"bad_prompt_v2": (
        "bad_prompt_v2 is a .pt embedding, which Studio does not load (pickle files can run code), so it was read as "
        f"words; convert it with `studio models import --convert {webui / 'embeddings' / 'bad_prompt_v2.pt'}`.")}


def test_a_pickle_embedding_in_a_linked_embeddings_folder_is_named_back(tmp_path):
    """A1111's embeddings/ a link to a folder of another name: the pickle was left unsaid (its real path has no
    embeddings folder)."""
    import pickle

    webui, kept = tmp_path / "sd-webui", tmp_path / "kept" / "textual inversions"
    (webui / "models" / "Stable-diffusion").mkdir(parents=True)
    kept.mkdir(parents=True)
    (kept / "bad_prompt_v2.pt").write_bytes(pickle.dumps({"string_to_param": {}}))
    (webui / "embeddings").symlink_to(kept, target_is_directory=True)
    found = embeddings_for(tmp_path / "models", [webui], ("bad_prompt_v2",))
    assert list(found.refused) == ["bad_prompt_v2"]
    assert found.refused["bad_prompt_v2"].startswith("bad_prompt_v2 is a .pt embedding, which Studio does not load")
