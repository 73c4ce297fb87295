"""Emphasis and long prompts: ``(words:1.3)``, ``[words]``, ``BREAK``, and prompts past CLIP's 75 tokens.

diffusers reads a prompt as plain text and cuts it after 75 tokens. A prompt written for AUTOMATIC1111,
ComfyUI or Fooocus (or read back from their pictures) means more: its emphasis (``studio.core.prompt_syntax``)
and all of its words. For such a prompt this stands in for the pipeline's ``encode_prompt``, the way A1111 reads
it: the tokens go into chunks of 75 (a full chunk ends at its last comma when one is in its last 20 tokens, and
BREAK ends one early), each chunk is read by the text encoder(s) on its own, between its start and end tokens,
each token's embedding is multiplied by its weight, and the chunk is scaled back to its mean before weighting.
The chunks are laid end to end; the UNet's cross-attention takes any length. The negative prompt gets as many
chunks (padded with empty ones), so that CFG can put the two side by side. SDXL's pooled embedding is the first
chunk's, as in A1111.

A word that names a textual inversion in ``<models>/embeddings`` (``studio.engine.embeddings``) takes that file's
vectors in place of its tokens, as in A1111: they are put in at the text encoder's token embeddings, for this
reading only.

A prompt with no emphasis and no embedding that fits in one chunk goes to diffusers' own ``encode_prompt``
untouched, so it gives exactly the embeddings it always did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import ModelError
from studio.core.prompt_syntax import Fragment, has_emphasis, parse_emphasis
from studio.core.prompt_tokens import CHUNK
from studio.engine.embeddings import embedding_vectors, embedding_widths, mentioned, word_pattern
from studio.engine.stand_in import standing_in

CHUNK_TOKENS = CHUNK  # CLIP reads 77: these and its start and end tokens
COMMA_LOOKBACK = 20  # a full chunk ends at a comma this close to its end, so a phrase stays whole


@dataclass
class _Chunk:
    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    vectors: dict[int, tuple[str, int]] = field(default_factory=dict)  # place -> (embedding, its vector)

    def split(self, at: int) -> tuple[_Chunk, _Chunk]:
        return (_Chunk(self.tokens[:at], self.weights[:at], {p: v for p, v in self.vectors.items() if p < at}),
                _Chunk(self.tokens[at:], self.weights[at:], {p - at: v for p, v in self.vectors.items() if p >= at}))


_Unit = list[tuple[int, float, tuple[str, int] | None]]  # tokens kept in one chunk: a word's, or an embedding's


def chunk_tokens(tokenizer: Any, fragments: Sequence[Fragment],  # noqa: ANN401
                 embeddings: Mapping[str, int] | None = None) -> list[_Chunk]:
    """The prompt's tokens (without start and end tokens) in chunks of at most 75, each token with its weight.
    ``embeddings``: textual inversions by name (lower case) and how many vectors each has; a name in the prompt
    takes that many places, in one chunk where they fit (an embedding never pulls words back to a comma)."""
    comma = tokenizer.get_vocab().get(",</w>")
    chunks: list[_Chunk] = []
    current = _Chunk()
    last_comma = -1

    def end_chunk() -> None:
        nonlocal current, last_comma
        chunks.append(current)
        current, last_comma = _Chunk(), -1

    for unit in _units(tokenizer, fragments, embeddings or {}):
        if unit is None:  # BREAK
            end_chunk()
            continue
        if unit[0][2] is None:  # a token of the text: A1111's rules, comma and all
            token, weight, _ = unit[0]
            if token == comma:
                last_comma = len(current.tokens)
            elif len(current.tokens) == CHUNK_TOKENS and last_comma >= 0 and \
                    len(current.tokens) - last_comma <= COMMA_LOOKBACK:
                current, rest = current.split(last_comma + 1)  # what follows the comma goes on into the next
                end_chunk()
                current = rest
            if len(current.tokens) == CHUNK_TOKENS:
                end_chunk()
            current.tokens.append(token)
            current.weights.append(weight)
            continue
        for start in range(0, len(unit), CHUNK_TOKENS):  # an embedding's vectors, in as few chunks as they fit
            part = unit[start:start + CHUNK_TOKENS]
            if current.tokens and len(current.tokens) + len(part) > CHUNK_TOKENS:
                end_chunk()
            for token, weight, vector in part:
                current.vectors[len(current.tokens)] = vector  # type: ignore[assignment]
                current.tokens.append(token)
                current.weights.append(weight)
    if current.tokens or not chunks:
        end_chunk()
    return chunks


def _units(tokenizer: Any, fragments: Sequence[Fragment],  # noqa: ANN401
           embeddings: Mapping[str, int]) -> list[_Unit | None]:
    """Each token as its own unit and each embedding's places as one; None for a BREAK."""
    names = re.compile(word_pattern(embeddings), re.IGNORECASE) if embeddings else None
    pieces: list[tuple[str, float] | tuple[str, float, str] | None] = []
    for fragment in fragments:
        if fragment.is_break:
            pieces.append(None)
            continue
        at = 0
        for match in names.finditer(fragment.text) if names else ():
            pieces += [(fragment.text[at:match.start()], fragment.weight), ("", fragment.weight, match[0].lower())]
            at = match.end()
        pieces.append((fragment.text[at:], fragment.weight))
    texts = [p[0] for p in pieces if p is not None and len(p) == 2]
    ids = iter(tokenizer(texts, add_special_tokens=False, truncation=False).input_ids if texts else [])
    stand_in = tokenizer("*", add_special_tokens=False).input_ids[0]  # any plain token: its row is replaced
    units: list[_Unit | None] = []
    for piece in pieces:
        if piece is None:
            units.append(None)
        elif len(piece) == 2:
            units += [[(token, piece[1], None)] for token in next(ids)]
        else:
            units.append([(stand_in, piece[1], (piece[2], row)) for row in range(embeddings[piece[2]])])
    return units


def needs_weighting(tokenizer: Any, prompt: str) -> bool:  # noqa: ANN401
    """Whether diffusers' plain reading would change what the prompt means: emphasis, or past 75 tokens."""
    if has_emphasis(prompt):
        return True
    return len(tokenizer(prompt, add_special_tokens=False, truncation=False).input_ids) > CHUNK_TOKENS


@contextmanager
def prompts_weighted(pipe: Any, vectors: Mapping[str, list[torch.Tensor]] | None = None) -> Iterator[None]:  # noqa: ANN401
    """While in the block, the pipeline's ``encode_prompt`` reads emphasis, long prompts and the textual inversions
    a prompt names (``vectors``: ``embeddings_named(...).vectors``)."""
    encode = getattr(pipe, "encode_prompt", None)
    pairs = _readers(pipe)
    if encode is None or not pairs:
        yield
        return
    is_sdxl = hasattr(pipe, "text_encoder_2")

    def usable(call: _Call) -> dict[str, list[torch.Tensor]]:
        named = mentioned((call.prompt, call.negative or ""), vectors or {})
        return {name: (vectors or {})[name] for name in named}

    @wraps(encode)  # the prompt cache around this keys on encode_prompt's own signature
    def weighted(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        call = _call(is_sdxl, args, kwargs)
        tokenizer = pairs[0][0]
        if call is None or any(getattr(e, "peft_config", None) for _, e in pairs):
            return encode(*args, **kwargs)
        vectors = usable(call)
        if not (vectors or needs_weighting(tokenizer, call.prompt) or needs_weighting(tokenizer, call.negative or "")):
            return encode(*args, **kwargs)
        return _encode(pipe, pairs, is_sdxl, call, vectors)

    with standing_in(pipe, "encode_prompt", weighted):
        yield


@dataclass
class NamedEmbeddings:
    """The textual inversions a job's prompts name: those this model can use, and why the others cannot."""

    paths: dict[str, Path] = field(default_factory=dict)  # by name in lower case
    vectors: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # each text encoder's, by name
    notes: list[str] = field(default_factory=list)  # said at every job, also when the reading is cached


def embeddings_named(pipe: Any, embeddings: Mapping[str, Path], prompts: Sequence[str]) -> NamedEmbeddings:  # noqa: ANN401
    """Read once per job: the embeddings (``library_embeddings.embeddings_for``) the prompts name."""
    widths = embedding_widths([e for _, e in _readers(pipe)])
    named = NamedEmbeddings()
    for name, path in mentioned(prompts, embeddings).items():
        try:
            named.vectors[name] = embedding_vectors(path, widths)
        except ModelError as exc:
            named.notes.append(f"{exc} It was read as words.")
        except OSError as exc:
            named.notes.append(f"The embedding {path.stem} could not be read ({exc.strerror}). It was read as words.")
        else:
            named.paths[name] = path
    return named


@dataclass(frozen=True)
class _Call:
    prompt: str
    negative: str | None
    pictures: int  # per prompt
    cfg: bool


def _call(is_sdxl: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call | None:
    """The arguments Studio passes (strings, no embeddings, no clip skip), or None for anything else."""
    names = (["prompt", "prompt_2"] if is_sdxl else ["prompt"]) + ["device", "num_images_per_prompt",
                                                                   "do_classifier_free_guidance", "negative_prompt"]
    given = dict(zip(names, args, strict=False)) | kwargs
    extra = {k: v for k, v in given.items() if k not in names and v is not None and k != "lora_scale"}
    prompt, negative = given.get("prompt"), given.get("negative_prompt")
    if extra or given.get("prompt_2") or given.get("negative_prompt_2") or not isinstance(prompt, str) \
            or not isinstance(negative, str | None):
        return None
    return _Call(prompt, negative, int(given.get("num_images_per_prompt") or 1),
                 bool(given.get("do_classifier_free_guidance", True)))


def _readers(pipe: Any) -> list[tuple[Any, torch.nn.Module]]:  # noqa: ANN401
    pairs = [(getattr(pipe, t, None), getattr(pipe, e, None))
             for t, e in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))]
    return [(t, e) for t, e in pairs if t is not None and isinstance(e, torch.nn.Module)]


@torch.no_grad()
def _encode(pipe: Any, pairs: list[tuple[Any, torch.nn.Module]], is_sdxl: bool, call: _Call,  # noqa: ANN401
            vectors: Mapping[str, list[torch.Tensor]]) -> tuple[Any, ...]:
    from diffusers.utils.torch_utils import get_module_execution_device

    tokenizer = pairs[0][0]
    counts = {name: len(per_encoder[0]) for name, per_encoder in vectors.items()}
    positive = chunk_tokens(tokenizer, parse_emphasis(call.prompt), counts)
    zero_negative = is_sdxl and call.negative is None and getattr(pipe.config, "force_zeros_for_empty_prompt", False)
    negative = chunk_tokens(tokenizer, parse_emphasis(call.negative or ""), counts) if call.cfg else []
    count = max(len(positive), len(negative) if not zero_negative else 0)
    empty = _Chunk()
    positive += [empty] * (count - len(positive))
    negative += [empty] * (count - len(negative)) if call.cfg and not zero_negative else []

    def read(chunks: list[_Chunk]) -> tuple[torch.Tensor, torch.Tensor | None]:
        embeds, pooled = [], None
        for chunk in chunks:
            per_encoder = []
            for index, (chunk_tokenizer, encoder) in enumerate(pairs):
                ids = torch.tensor([_ids(chunk_tokenizer, chunk.tokens)], device=get_module_execution_device(encoder))
                with _vectors_placed(encoder, {1 + place: vectors[name][index][row]
                                               for place, (name, row) in chunk.vectors.items()}):
                    if is_sdxl:
                        out = encoder(ids, output_hidden_states=True)
                        if pooled is None and out[0].ndim == 2:
                            pooled = out[0]
                        per_encoder.append(out.hidden_states[-2])
                    else:
                        per_encoder.append(encoder(ids, attention_mask=_mask(encoder, ids, len(chunk.tokens)))[0])
            # Each encoder's part is weighted and keeps its own mean, as A1111's SDXL embedders do.
            embeds.append(torch.cat([_weighted(e, chunk.weights) for e in per_encoder], dim=-1))
        return torch.cat(embeds, dim=1), pooled

    dtype = pairs[-1][1].dtype
    device = pipe._execution_device

    def laid_out(embeds: torch.Tensor) -> torch.Tensor:
        return embeds.to(dtype=dtype, device=device).repeat_interleave(call.pictures, dim=0)

    prompt_embeds, pooled = read(positive)
    negative_embeds = negative_pooled = None
    if call.cfg and zero_negative:
        negative_embeds, negative_pooled = torch.zeros_like(prompt_embeds), torch.zeros_like(pooled)
    elif call.cfg:
        negative_embeds, negative_pooled = read(negative)
    prompt_embeds = laid_out(prompt_embeds)
    negative_embeds = None if negative_embeds is None else laid_out(negative_embeds)
    if not is_sdxl:
        return prompt_embeds, negative_embeds
    pooled = pooled.repeat_interleave(call.pictures, dim=0)
    negative_pooled = None if negative_pooled is None else negative_pooled.repeat_interleave(call.pictures, dim=0)
    return prompt_embeds, negative_embeds, pooled, negative_pooled


@contextmanager
def _vectors_placed(encoder: torch.nn.Module, rows: Mapping[int, torch.Tensor]) -> Iterator[None]:
    """The token embeddings at these places (after the start token) replaced by an embedding's vectors."""
    if not rows:
        yield
        return

    def place(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:  # noqa: ANN401
        output = output.clone()
        for at, vector in rows.items():
            output[:, at] = vector.to(device=output.device, dtype=output.dtype)
        return output

    handle = encoder.get_input_embeddings().register_forward_hook(place)
    try:
        yield
    finally:
        handle.remove()


def _ids(tokenizer: Any, tokens: list[int]) -> list[int]:  # noqa: ANN401
    """Laid out as diffusers' own tokenizing does: start, the tokens, end, then padding up to 77."""
    ids = [tokenizer.bos_token_id, *tokens, tokenizer.eos_token_id]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return ids + [pad] * (CHUNK_TOKENS + 2 - len(ids))


def _mask(encoder: torch.nn.Module, ids: torch.Tensor, tokens: int) -> torch.Tensor | None:
    """The attention mask diffusers passes to an encoder that asks for one: the start, tokens and end, no padding."""
    if not getattr(encoder.config, "use_attention_mask", False):
        return None
    mask = torch.zeros_like(ids)
    mask[:, :tokens + 2] = 1
    return mask


def _weighted(embeds: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """Each token's embedding times its weight, the whole scaled back to its mean before (A1111's emphasis)."""
    if all(w == 1.0 for w in weights):
        return embeds
    scale = torch.ones(embeds.shape[1], dtype=embeds.dtype, device=embeds.device)
    scale[1:1 + len(weights)] = torch.tensor(weights, dtype=embeds.dtype)
    weighted = embeds * scale[None, :, None]
    mean, new_mean = embeds.float().mean(), weighted.float().mean()
    if min(abs(float(mean)), abs(float(new_mean))) < 1e-6:
        return weighted  # no mean to keep (a layer norm without bias): the ratio would be noise
    return weighted * (mean / new_mean).to(embeds.dtype)
