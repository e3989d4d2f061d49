"""Cross-model activation patching: a source model's head activations in a target model.

Both models read the same clean prompts (they must tokenize them identically).

* **Output patching**: for each group (structure reader, position detector, position transmitter,
  value fetcher) and the full circuit, the source's ``z`` (the ``o_proj`` input) of the group's
  heads at the group's position (per prompt; the structure reader at the prompt's own earlier
  occurrence of the query label) replaces the target's; the target's own ``o_proj`` and everything
  downstream stay the target's. Only the layers and positions an edit can change are recomputed
  (:func:`entity_tracking.partial_forward.patched_logits`).
* **Input patching** (value fetcher, position transmitter; ``cmap.input_mode``): the source's ``q``
  of the heads at the group's position and/or the ``k``/``v`` of their key/value heads (variants
  ``q``, ``k``, ``v``, ``qk``, ``qkv``). With grouped-query attention a query head has no key/value
  of its own: patching "the k/v of query head h" patches the kv head that h's whole group shares
  (:func:`entity_tracking.interventions.kv_head`).

  - ``paper`` (the default, the paper's definition): ``k``/``v`` at every position *before* the
    group's position, ``q`` at it; then every head's ``z`` at every position before the last
    token is reset to the target's own clean run, in every layer, so the patch acts through the
    last token only: the patched heads' attention there (with the source's ``q`` when the group's
    position is the last token) over the source's keys/values at the earlier positions (seen by
    every query head that reads a patched kv head). A ``q`` patch at an earlier position (position
    detector, structure reader) is therefore a no-op, while their ``k``/``v`` patches still reach
    the last token through its attention to the positions before theirs. Only the last token is
    recomputed, from the lowest patched layer (:func:`reset_logits`).
  - ``no_reset`` (this artifact's earlier behaviour): ``k``/``v`` at every position up to *and
    including* the group's position, ``q`` at it, and nothing reset, so the k/v patches act
    through every later position (and the layers above them), not just the last token.

Head sets come from the circuit or from the heads DCM selected, per group, as ``cmap.heads`` says,
from the source's circuit (``cmap.circuit_of: source``, as in the paper) or the target's. An empty
head set patches nothing: its accuracy is the target's own, reported with ``patched: false``.

To need one model in memory at a time, the source's activations (only the patched heads, at the
patched positions) are cached on the CPU first; then the target runs. Each result records its
``input_mode``.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.circuits import GROUPS, POSITION_OF, Head, load_circuit
from entity_tracking.evaluation import accuracy
from entity_tracking.interventions import Edit, ModelParts, capture, chain, intervene, kv_head, patch, replace_where
from entity_tracking.io import damaged_fix, read_json, read_jsonl, sha256_file, write_csv, write_json
from entity_tracking.layout import dcm_desideratum
from entity_tracking.model_specs import ModelSource
from entity_tracking.models import load_source
from entity_tracking.partial_forward import CleanRun, clean_run, equal_length_batches, patched_logits, run_suffix
from entity_tracking.tokenization import Encoded, encode_records

log = logging.getLogger(__name__)

OUTPUT_ORDER: tuple[str, ...] = ("struct_reader", "pos_detector", "pos_transmitter", "value_fetcher", "full_circuit")
VARIANTS: dict[str, tuple[str, ...]] = {"q": ("q",), "k": ("k",), "v": ("v",), "qk": ("q", "k"), "qkv": ("q", "k", "v")}
INPUT_MODES: tuple[str, ...] = ("paper", "no_reset")
SPANS: tuple[str, ...] = ("at", "upto", "before")
SlotKey = tuple[str, int, str, str]


@dataclass(frozen=True)
class CmapSettings:
    """A pair's settings (config ``cmap``): whose circuit gives the head sets, where each group's heads come
    from (``circuit`` or ``dcm:<desideratum>``), the input-patching groups, variants and mode, the batch size,
    and the confidence of the accuracy intervals (``evaluation.confidence``)."""

    circuit_of: str
    heads: dict[str, str]
    input_groups: list[str]
    input_variants: list[str]
    input_mode: str
    batch_size: int
    confidence: float

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> CmapSettings:
        """The settings a study's config gives."""
        s = config["cmap"]
        keys = ("circuit_of", "input_groups", "input_variants", "input_mode", "batch_size")
        return cls(heads=dict(s["heads"]), confidence=config["evaluation"]["confidence"], **{k: s[k] for k in keys})


class CmapPairError(ValueError):
    """The two models of a CMAP pair cannot be patched into each other."""


@dataclass(frozen=True)
class Patch:
    """One patched slot: ``site`` (z, q: query heads; k, v: kv heads) of ``heads`` in ``layer`` at the
    position ``position`` (a field of :class:`Encoded`; ``span="at"``), at every position up to and
    including it (``"upto"``) or at every position before it (``"before"``)."""

    site: str
    layer: int
    heads: tuple[int, ...]
    position: str
    span: str = "at"

    def __post_init__(self) -> None:
        if self.span not in SPANS:
            raise ValueError(f"unknown span {self.span!r}; use one of {SPANS}")

    @property
    def key(self) -> SlotKey:
        return (self.site, self.layer, self.position, self.span)


def _merge(slots: dict[SlotKey, set[int]]) -> list[Patch]:
    return [Patch(site, layer, tuple(sorted(h)), pos, span) for (site, layer, pos, span), h in sorted(slots.items())]


def output_patches(groups: dict[str, Sequence[Head]]) -> list[Patch]:
    """The ``z`` patches of the given groups' heads, each at its group's position (duplicates merged)."""
    slots: dict[SlotKey, set[int]] = {}
    for group, heads in groups.items():
        for layer, head in heads:
            slots.setdefault(("z", layer, POSITION_OF[group], "at"), set()).add(head)
    return _merge(slots)


def input_patches(
    parts: ModelParts, heads: Sequence[Head], position: str, variant: str, mode: str = "paper"
) -> list[Patch]:
    """``q`` of ``heads`` at ``position``; ``k``/``v`` of their kv heads at every position before it
    (``mode="paper"``; the reset is :func:`cmap_logits`'s ``reset``) or up to and including it (``"no_reset"``)."""
    if mode not in INPUT_MODES:
        raise ValueError(f"unknown input patching mode {mode!r}; use one of {INPUT_MODES}")
    span = "before" if mode == "paper" else "upto"
    slots: dict[SlotKey, set[int]] = {}
    for site in VARIANTS[variant]:
        for layer, head in heads:
            if site == "q":
                slots.setdefault(("q", layer, position, "at"), set()).add(head)
            else:
                slots.setdefault((site, layer, position, span), set()).add(kv_head(parts, head))
    return _merge(slots)


def resets(plan: str, mode: str) -> bool:
    """Whether plan ``plan`` (a key of :func:`plans_for`) resets every head's ``z`` before the last token:
    input patching in ``paper`` mode."""
    return mode == "paper" and plan.startswith("input/")


# ------------------------------------------------------------------------------- source activations


def needed_slots(plans: dict[str, list[Patch]]) -> dict[SlotKey, list[int]]:
    """Per captured slot, the union of the heads any plan patches there (sorted)."""
    union: dict[SlotKey, set[int]] = {}
    for patches in plans.values():
        for p in patches:
            union.setdefault(p.key, set()).update(p.heads)
    return {k: sorted(v) for k, v in sorted(union.items())}


@torch.no_grad()
def capture_source(
    parts: ModelParts, batch: Encoded, slots: dict[SlotKey, list[int]]
) -> tuple[dict[SlotKey, torch.Tensor], torch.Tensor]:
    """The source's activations of ``slots`` on the CPU (``[B, 1, n, d]`` at a position, ``[B, T, n, d]``
    up to or before it; ``n`` = the slot's heads; ``k`` before rotary embeddings), and its last-token
    logits ``[B, vocab]``."""
    device = next(parts.model.parameters()).device
    store: dict[Any, torch.Tensor] = {}
    by_site: dict[tuple[str, int], list[Edit]] = {}
    for key in slots:
        site, layer, pos, span = key
        at = getattr(batch, pos) if span == "at" else None
        by_site.setdefault((site, layer), []).append(capture(store, key, at))
    with intervene(parts, {k: chain(*fns) for k, fns in by_site.items()}):
        logits = parts.model(input_ids=batch.input_ids.to(device)).logits
    rows = torch.arange(len(batch), device=device)
    out = {key: store[key][:, :, heads].cpu() for key, heads in slots.items()}
    return out, logits[rows, batch.last.to(device)].float().cpu()


def patch_edits(
    parts: ModelParts,
    patches: Sequence[Patch],
    batch: Encoded,
    source: dict[SlotKey, torch.Tensor],
    slots: dict[SlotKey, list[int]],
    rows: torch.Tensor,
    offset: int,
) -> dict[tuple[str, int], Edit]:
    """The target-side edits of ``patches`` for batch rows ``rows`` whose views begin at token ``offset``
    (``rows = all, offset = 0``: a full forward)."""
    rows = rows.cpu()
    by_site: dict[tuple[str, int], list[Edit]] = {}
    for p in patches:
        cols = [slots[p.key].index(h) for h in p.heads]
        values = source[p.key][rows][:, :, cols]  # [b, 1 or T, n, d]
        heads = torch.tensor(p.heads)
        pos = getattr(batch, p.position)[rows]
        if p.span == "at":
            fn = patch(pos - offset, heads, values[:, 0])
        else:
            t = values.shape[1]
            n_heads = parts.site_heads(p.site)
            tokens = torch.arange(offset, t)[None, :]
            at = tokens <= pos[:, None] if p.span == "upto" else tokens < pos[:, None]  # [b, T - offset]
            mask = at[:, :, None] & torch.isin(torch.arange(n_heads), heads)[None, None, :]
            full = torch.zeros(len(rows), t - offset, n_heads, parts.head_dim, dtype=values.dtype)
            full[:, :, heads] = values[:, offset:]
            fn = replace_where(mask, full)
        by_site.setdefault((p.site, p.layer), []).append(fn)
    return {k: chain(*fns) for k, fns in by_site.items()}


@torch.no_grad()
def cmap_logits(
    parts: ModelParts,
    batch: Encoded,
    clean: CleanRun,
    patches: Sequence[Patch],
    source: dict[SlotKey, torch.Tensor],
    slots: dict[SlotKey, list[int]],
    reset: bool = False,
) -> torch.Tensor:
    """Last-token logits ``[B, vocab]`` of the target with ``patches`` from the source, recomputing only
    layers from the lowest patched one and positions from each row's earliest patched position.

    ``reset``: every head's ``z`` before the last token is reset to the target's clean run
    (:func:`reset_logits`, input patching as the paper defines it)."""
    if reset:
        return reset_logits(parts, batch, clean, patches, source, slots)
    device = clean.resid[0].device
    start = torch.stack(
        [torch.zeros(len(batch), dtype=torch.long) if p.span != "at" else getattr(batch, p.position) for p in patches]
    ).amin(0)
    first = min(p.layer for p in patches)
    return patched_logits(
        parts,
        clean,
        start.to(device),
        first,
        lambda rows, s: patch_edits(parts, patches, batch, source, slots, rows, s),
    ).cpu()


def rotate_keys(parts: ModelParts, layer: int, keys: torch.Tensor) -> torch.Tensor:
    """``k_proj`` outputs ``[B, n, T, dh]`` (any heads) of positions ``0..T`` after the rotary embedding
    ``layer``'s attention applies (the model's own ``rotary_emb`` and ``apply_rotary_pos_emb``): the keys
    it would cache."""
    attn = parts.layers[layer].self_attn
    apply = getattr(sys.modules[type(attn).__module__], "apply_rotary_pos_emb", None)
    if apply is None:
        raise ValueError(f"{type(attn).__name__}'s module has no apply_rotary_pos_emb; cannot rotate patched keys")
    positions = torch.arange(keys.shape[2], device=keys.device)[None]
    cos, sin = parts.model.model.rotary_emb(keys, position_ids=positions)
    return apply(keys, keys, cos, sin)[1]


@torch.no_grad()
def reset_logits(
    parts: ModelParts,
    batch: Encoded,
    clean: CleanRun,
    patches: Sequence[Patch],
    source: dict[SlotKey, torch.Tensor],
    slots: dict[SlotKey, list[int]],
) -> torch.Tensor:
    """Last-token logits ``[B, vocab]`` of input patching as the paper defines it: ``patches`` (``q`` at a
    position, ``k``/``v`` before it) in a full forward, then every head's ``z`` at every position before the
    last token reset to the target's clean run, in every layer.

    The reset keeps every earlier position's residual stream clean in every layer, so only the last token
    can change: it runs from the lowest patched layer over the clean keys/values, in which the patched kv
    heads' entries before each row's position are the source's (keys rotated as the target's attention
    rotates its own ``k_proj`` outputs), with the source's ``q`` at the last token for rows whose position
    is the last token (elsewhere a ``q`` patch is reset away).
    """
    device = clean.resid[0].device
    t = clean.resid[0].shape[1]
    last = t - 1
    if not bool((batch.last == last).all()):
        raise ValueError("input patching with a reset needs prompts of one length (the last token at the end)")
    keys, values = list(clean.keys), list(clean.values)
    edits: dict[tuple[str, int], list[Edit]] = {}
    layers: list[int] = []
    for p in patches:
        pos = getattr(batch, p.position).to(device)
        cols = [slots[p.key].index(h) for h in p.heads]
        src = source[p.key][:, :, cols].to(device=device, dtype=clean.resid[0].dtype)  # [B, 1 or T, n, dh]
        heads = torch.tensor(p.heads, device=device)
        if p.site == "q" and p.span == "at":
            rows = pos == last
            if not bool(rows.any()):
                continue
            mask = rows[:, None, None] & torch.isin(torch.arange(parts.heads, device=device), heads)[None, None, :]
            full = torch.zeros(len(batch), 1, parts.heads, parts.head_dim, dtype=src.dtype, device=device)
            full[:, :, heads] = src
            edits.setdefault(("q", p.layer), []).append(replace_where(mask, full))
        elif p.site in ("k", "v") and p.span == "before":
            before = (torch.arange(t, device=device)[None, :] < pos[:, None])[:, None, :, None]  # [B, 1, T, 1]
            if not bool(before.any()):
                continue
            new = src.transpose(1, 2)  # [B, n, T, dh]
            if p.site == "k":
                new = rotate_keys(parts, p.layer, new)
            store = keys if p.site == "k" else values
            store[p.layer] = store[p.layer].clone()
            store[p.layer][:, heads] = torch.where(before, new, store[p.layer][:, heads])
        else:
            raise ValueError(f"input patching with a reset patches q at a position and k/v before it, not {p}")
        layers.append(p.layer)
    if not layers:
        return clean.logits.cpu()
    first = min(layers)
    with intervene(parts, {k: chain(*fns) for k, fns in edits.items()}):
        normed = run_suffix(parts, clean.resid[first][:, last:], last, first, keys, values)
    return parts.model.lm_head(normed[:, 0]).cpu()


# ----------------------------------------------------------------------------------------- head sets


def _pairs(value: Any) -> list[Head] | None:
    ok = isinstance(value, list) and all(
        isinstance(h, list) and len(h) == 2 and all(type(x) is int and x >= 0 for x in h) for h in value
    )
    return [(h[0], h[1]) for h in value] if ok else None


def resolve_head_sets(
    specs: dict[str, str],
    name: str,
    circuit_file: str | Path,
    dcm_files: dict[str, str],
    layers: int,
    heads: int,
) -> dict[str, dict[str, Any]]:
    """Per group: where its heads come from (its spec in ``specs``: ``circuit`` or ``dcm:<desideratum>``) and
    the heads (checked against the model's size)."""
    circuit = load_circuit(circuit_file, layers, heads)
    out: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        desideratum = dcm_desideratum(specs[group])
        if desideratum is None:
            out[group] = {"from": "circuit", "circuit": name, "heads": [list(h) for h in circuit[group]]}
            continue
        path = dcm_files[group]
        dcm = read_json(path)
        want = {"circuit": name, "group": group, "desideratum": desideratum}
        got = {k: dcm.get(k) for k in want} if isinstance(dcm, dict) else {}
        selected = _pairs(dcm.get("selected")) if isinstance(dcm, dict) else None
        if got != want or selected is None:
            raise ValueError(
                f"{path}: not the DCM result of circuit {name!r}, group {group!r}, desideratum "
                f"{desideratum!r} with a 'selected' list of [layer, head] pairs (it says {got}). {damaged_fix(path)}"
            )
        bad = [h for h in selected if h[0] >= layers or h[1] >= heads]
        if bad:
            raise ValueError(f"{path}: selected heads {bad[:5]} do not exist in a model with {layers}x{heads} heads")
        if _pairs(dcm.get("heads")) not in (None, circuit[group]):
            log.warning("%s: its group heads differ from %s (stale DCM result?)", path, circuit_file)
        out[group] = {
            "from": "dcm",
            "circuit": name,
            "desideratum": desideratum,
            "file": str(path),
            "dcm_test_accuracy": dcm.get("test_accuracy"),
            "heads": [list(h) for h in selected],
        }
    return out


# --------------------------------------------------------------------------------------------- pairs


def check_pair(source: str, target: str, enc_s: Encoded, enc_t: Encoded, vocab_s: Any, vocab_t: Any) -> None:
    """The two models must give the task's words the same token ids and the prompts the same tokens."""
    same = vocab_s == vocab_t and torch.equal(enc_s.input_ids, enc_t.input_ids)
    if not same:
        raise CmapPairError(
            f"CMAP pair {source} -> {target}: the two models tokenize the task differently (different token ids "
            "for the objects and labels, or different prompt tokens), so activations cannot be patched position "
            f"by position. Fix: give both the same tokenizer (models.{source}.tokenizer / models.{target}.tokenizer) "
            "or remove the pair from cmap.pairs."
        )


def _geometry(parts: ModelParts) -> dict[str, int]:
    return {"layers": parts.num_layers, "heads": parts.heads, "kv_heads": parts.kv_heads, "head_dim": parts.head_dim}


def plans_for(
    parts: ModelParts, head_sets: dict[str, dict[str, Any]], settings: CmapSettings
) -> dict[str, list[Patch]]:
    """Every configuration of a pair: ``output/<group or full_circuit>`` and ``input/<group>/<variant>``
    (input patches as ``settings.input_mode`` says; :func:`resets` tells which plans reset)."""
    mode = settings.input_mode
    heads = {g: [tuple(h) for h in head_sets[g]["heads"]] for g in GROUPS}
    plans: dict[str, list[Patch]] = {}
    for name in OUTPUT_ORDER:
        plans[f"output/{name}"] = output_patches(heads if name == "full_circuit" else {name: heads[name]})
    for group in settings.input_groups:
        for variant in settings.input_variants:
            plans[f"input/{group}/{variant}"] = input_patches(parts, heads[group], POSITION_OF[group], variant, mode)
    return plans


def _kv_heads(patches: Sequence[Patch]) -> list[list[int]]:
    """The ``[layer, kv head]`` pairs whose keys or values a plan patches."""
    return [list(x) for x in sorted({(p.layer, h) for p in patches if p.site in ("k", "v") for h in p.heads})]


def _release_memory() -> None:
    """Return the memory of a model no longer referenced (CPU, and the CUDA cache)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class SourceRun:
    """The source side of a CMAP pair: its prompts, head sets and patch plans, and per batch of prompts the
    activations the plans patch (on the CPU) and the source's own predictions."""

    enc: Encoded
    vocab: Any
    geometry: dict[str, int]
    head_sets: dict[str, dict[str, Any]]
    plans: dict[str, list[Patch]]
    slots: dict[SlotKey, list[int]]
    batches: list[torch.Tensor]
    cached: list[dict[SlotKey, torch.Tensor]]
    predictions: torch.Tensor


def run_source(
    source: ModelSource, records: list[dict[str, Any]], name: str, circuit_file: str | Path,
    dcm_files: dict[str, str], settings: CmapSettings,
) -> SourceRun:  # fmt: skip
    """Load the source, resolve the head sets of circuit ``name``, cache what the patches need; free the model."""
    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    enc = encode_records(loaded.tokenizer, records, vocab)
    head_sets = resolve_head_sets(settings.heads, name, circuit_file, dcm_files, parts.num_layers, parts.heads)
    plans = plans_for(parts, head_sets, settings)
    slots = needed_slots(plans)
    batches = equal_length_batches(enc.attention_mask, settings.batch_size)
    cached = []
    predictions = torch.empty(len(enc), dtype=torch.long)
    for rows in tqdm(batches, desc=f"cache {source.name}", unit="batch", disable=None):
        acts, logits = capture_source(parts, enc.select(rows), slots)
        cached.append(acts)
        predictions[rows] = logits.argmax(-1)
    geometry = _geometry(parts)
    del parts, loaded  # one model in memory at a time: the source goes before the target loads
    _release_memory()
    return SourceRun(enc, vocab, geometry, head_sets, plans, slots, batches, cached, predictions)


def run_target(
    target_model: ModelSource, source: str, records: list[dict[str, Any]], src: SourceRun, input_mode: str
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Load the target and run every plan of ``src`` in it: its own predictions and those of each plan."""
    target = target_model.name
    loaded, vocab = load_source(target_model)
    parts = ModelParts.of(loaded.model)
    check_pair(source, target, src.enc, encode_records(loaded.tokenizer, records, vocab), src.vocab, vocab)
    if _geometry(parts) != src.geometry:
        raise CmapPairError(
            f"CMAP pair {source} -> {target}: different geometry {src.geometry} vs {_geometry(parts)}; heads can only "
            "be patched between models of one architecture. Fix: remove the pair from cmap.pairs."
        )
    device = next(parts.model.parameters()).device
    own_pred = torch.empty(len(src.enc), dtype=torch.long)
    preds = {k: torch.empty(len(src.enc), dtype=torch.long) for k in src.plans}
    pairs = list(zip(src.batches, src.cached, strict=True))
    for rows, acts in tqdm(pairs, desc=f"patch {source}->{target}", unit="batch", disable=None):
        batch = src.enc.select(rows)
        clean = clean_run(parts, batch.input_ids.to(device))
        own = clean.logits.argmax(-1).cpu()
        own_pred[rows] = own
        for key, patches in src.plans.items():
            reset = resets(key, input_mode)
            patched = cmap_logits(parts, batch, clean, patches, acts, src.slots, reset=reset) if patches else None
            preds[key][rows] = own if patched is None else patched.argmax(-1)
    return own_pred, preds


def cmap_result(
    source: str, target: str, name: str, data_file: str | Path, src: SourceRun, target_pred: torch.Tensor,
    preds: dict[str, torch.Tensor], settings: CmapSettings,
) -> dict[str, Any]:  # fmt: skip
    """The result of a pair: both models' accuracies, and every output and input patch's, with its head count."""
    confidence, answers = settings.confidence, src.enc.answer_ids
    plans, head_sets = src.plans, src.head_sets

    def entry(key: str, heads: int) -> dict[str, Any]:
        return {"heads": heads, "patched": bool(plans[key]), **accuracy(preds[key], answers, confidence)}

    result: dict[str, Any] = {
        "source": source,
        "target": target,
        "circuit": name,
        "circuit_of": settings.circuit_of,
        "input_mode": settings.input_mode,
        "records": len(src.enc),
        "data_sha256": sha256_file(data_file),
        "geometry": src.geometry,
        "source_accuracy": accuracy(src.predictions, answers, confidence),
        "target_accuracy": accuracy(target_pred, answers, confidence),
        "head_sets": head_sets,
        "output": {},
        "input": {},
    }
    for group in OUTPUT_ORDER:
        members = GROUPS if group == "full_circuit" else (group,)
        n = sum(len(head_sets[g]["heads"]) for g in members)
        result["output"][group] = {
            "positions": sorted({POSITION_OF[g] for g in members}),
            **entry(f"output/{group}", n),
        }
    for group in settings.input_groups:
        result["input"][group] = {
            variant: {
                "kv_heads": _kv_heads(plans[f"input/{group}/{variant}"]),
                **entry(f"input/{group}/{variant}", len(head_sets[group]["heads"])),
            }
            for variant in settings.input_variants
        }
    return result


def run_cmap(
    source_model: ModelSource,
    target_model: ModelSource,
    name: str,
    data_file: str | Path,
    circuit_file: str | Path,
    dcm_files: dict[str, str],
    out_json: str | Path,
    settings: CmapSettings,
) -> dict[str, Any]:
    """Rule cmap: one (source, target) pair with the head sets of circuit ``name`` (``layout.circuit_name``):
    every group, output and input variants (one model in memory)."""
    source, target = source_model.name, target_model.name
    records = read_jsonl(data_file)
    src = run_source(source_model, records, name, circuit_file, dcm_files, settings)
    target_pred, preds = run_target(target_model, source, records, src, settings.input_mode)
    result = cmap_result(source, target, name, data_file, src, target_pred, preds, settings)
    for group, row in result["output"].items():
        log.info("%s -> %s output %s: %.4f (%s heads)", source, target, group, row["accuracy"], row["heads"])
    write_json(out_json, result)
    return result


CMAP_COLUMNS = (
    "source",
    "target",
    "kind",
    "group",
    "variant",
    "input_mode",
    "heads",
    "patched",
    "records",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
    "source_accuracy",
    "target_accuracy",
)


def write_cmap_table(files: Sequence[str | Path], out_csv: str | Path) -> None:
    """One row per pair x kind (output/input) x group x variant (``z`` for output patching); input rows name
    the run's ``input_mode``, output rows leave it empty."""
    rows = []
    for path in files:
        res = read_json(path)
        common = {
            "source": res["source"],
            "target": res["target"],
            "source_accuracy": res["source_accuracy"]["accuracy"],
            "target_accuracy": res["target_accuracy"]["accuracy"],
        }
        for group, row in res["output"].items():
            rows.append({**common, **row, "kind": "output", "group": group, "variant": "z", "input_mode": ""})
        inputs = {**common, "kind": "input", "input_mode": res["input_mode"]}
        for group, variants in res["input"].items():
            for variant, row in variants.items():
                rows.append({**inputs, **row, "group": group, "variant": variant})
    write_csv(out_csv, CMAP_COLUMNS, rows)
