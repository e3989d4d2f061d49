"""DCM, desiderata-based component masking: which heads of a group carry a desideratum.

For a head group of a circuit (its heads, its position class) and a desideratum (base/source pairs
with labels, :mod:`entity_tracking.desiderata`), one mask value ``m_h`` per head interpolates the
head's output at the group's position between the base run and the source run (each prompt at its
own position): ``z = m_h * z_base + (1 - m_h) * z_source``. ``m = 1`` keeps the base, ``m = 0``
patches the head from the source: a head is *selected* when its binarised mask is 0.

Training (paper settings in ``config.yaml`` ``dcm``): masks start at 1, loss
``-mean(logit of the label) + lambda * sum(1 - m)``, Adam, a seeded shuffle of the training split
each epoch, masks clamped to [0, 1] before every step. Every ``validate_every`` steps the
binarised mask is scored on the validation split; the best is kept (ties prefer more heads, as in
the paper) and scored once on the test split, beside the desideratum's chance floor (the same
pairs with no intervention); both keep their per-pair outcomes (``test_outcomes``, ``floor_outcomes``:
``0``/``1`` per test pair, in pair order) for a paired test on the same pairs.

Only what a mask can change is recomputed: the layers from the group's lowest layer and the
positions from the group's position on, over cached clean runs of the base prompts
(:func:`entity_tracking.partial_forward.patched_logits`), so training backpropagates through a few
positions, not the whole prompt. The source side is one forward per source prompt, cached.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.circuits import POSITION_OF, POSITIONS, Head
from entity_tracking.desiderata import REWRITTEN, source_prompt
from entity_tracking.interventions import ModelParts, mix
from entity_tracking.layout import DCM_SPLITS as SPLITS
from entity_tracking.layout import dcm_result_path, desiderata_file
from entity_tracking.model_specs import ModelSource
from entity_tracking.partial_forward import CleanRun, SuffixEdits, clean_run, patched_logits, z_at
from entity_tracking.stats import outcome_string
from entity_tracking.tokenization import Encoded, Vocabulary, encode_prompts, encode_records

log = logging.getLogger(__name__)
TRAINING_KEYS: tuple[str, ...] = ("lr", "epochs", "batch_size", "lambda", "validate_every", "seed")


@dataclass
class PairSet:
    """A desideratum split encoded for one model: base prompts, source prompts, label token ids."""

    base: Encoded
    source: Encoded
    labels: torch.Tensor  # [N]
    examples: list[dict[str, Any]]
    source_rows: torch.Tensor | None = None  # [N] the split's record that is each source, when not rewritten

    def __len__(self) -> int:
        return len(self.base)


def encode_pairs(
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    records: Sequence[dict[str, Any]],
    base: Encoded,
    vocab: Vocabulary,
) -> PairSet:
    """Encode the sources and labels of a desideratum split whose bases are ``records`` (encoded: ``base``)."""
    if [ex["base"] for ex in examples] != [r["id"] for r in records]:
        raise ValueError(
            "the desideratum examples do not follow their split's records one by one; the desiderata files are "
            "stale or were edited: delete results/<study>/desiderata and rerun snakemake."
        )
    by_id = {r["id"]: r for r in records}
    labels = torch.tensor([vocab.object_ids[ex["label"]] for ex in examples], dtype=torch.long)
    if any(ex["desideratum"] in REWRITTEN for ex in examples):
        source = encode_prompts(tokenizer, [source_prompt(ex, by_id) for ex in examples], vocab)
        return PairSet(base, source, labels, list(examples))
    for ex in examples:
        source_prompt(ex, by_id)  # checks the stored source text
    index = {r["id"]: i for i, r in enumerate(records)}
    rows = torch.tensor([index[ex["source"]] for ex in examples], dtype=torch.long)
    return PairSet(base, base.select(rows), labels, list(examples), rows)  # the sources are records of the split


class BaseRuns:
    """Clean runs of a split's records (the base prompts), by rows: kept in memory when ``keep``, else recomputed
    per call. Every record's plain prediction and per-head ``z`` at the three position classes are always kept:
    when a source prompt is a record of the split, its ``z`` comes from here instead of another forward pass."""

    def __init__(self, parts: ModelParts, base: Encoded, batch_size: int, keep: bool):
        self.parts, self.base, self.batch_size = parts, base, batch_size
        self.device = next(parts.model.parameters()).device
        self.kept: CleanRun | None = None
        runs, zs, preds = [], [], []
        for rows in self.batches():
            run = self._run(rows)
            preds.append(run.logits.argmax(-1))
            zs.append([torch.stack([z[torch.arange(len(rows)), getattr(base, p)[rows]] for p in POSITIONS], 1)
                       for z in run.z])  # fmt: skip
            if keep:
                runs.append(run.slim())
        per_layer = [torch.cat(z) for z in zip(*zs, strict=True)] if zs else []  # [N, 3, H, dh]
        self.record_z = {p: [z[:, i] for z in per_layer] for i, p in enumerate(POSITIONS)}
        self.predictions = torch.cat(preds).cpu() if preds else torch.empty(0, dtype=torch.long)
        if keep and runs:
            self.kept = CleanRun.concat(runs)

    def _run(self, rows: torch.Tensor) -> CleanRun:
        lengths = set(self.base.attention_mask[rows].sum(1).tolist())
        if len(lengths) != 1:
            raise ValueError(f"base prompts of one batch must have one length, got {sorted(lengths)} tokens")
        return clean_run(self.parts, self.base.input_ids[rows].to(self.device))

    def get(self, rows: torch.Tensor) -> CleanRun:
        if self.kept is None:
            return self._run(rows).slim()
        first = int(rows[0])
        if torch.equal(rows, torch.arange(first, first + len(rows))):  # a batch in order: views, no copies
            return self.kept.rows(slice(first, first + len(rows)))
        return self.kept.rows(rows.to(self.device))

    def batches(self) -> list[torch.Tensor]:
        n = len(self.base)
        return [torch.arange(s, min(s + self.batch_size, n)) for s in range(0, n, self.batch_size)]

    def sources(self, pairs: PairSet, positions: Sequence[str]) -> dict[str, list[torch.Tensor]]:
        """The source ``z`` of ``pairs`` at ``positions``: looked up when the sources are records of the split,
        else by a forward pass over the (rewritten) source prompts."""
        if pairs.source_rows is None:
            return source_z(self.parts, pairs.source, positions, self.batch_size)
        return {p: [z[pairs.source_rows] for z in self.record_z[p]] for p in positions}


def source_z(
    parts: ModelParts, source: Encoded, positions: Sequence[str], batch_size: int
) -> dict[str, list[torch.Tensor]]:
    """Every layer's per-head ``z`` of the source prompts at each of their own ``positions`` (one forward):
    ``{position: [N, H, dh] per layer}``."""
    device = next(parts.model.parameters()).device
    pos = torch.stack([getattr(source, p) for p in positions], dim=1)  # [N, P]
    chunks: list[list[torch.Tensor]] = []
    for s in range(0, len(source), batch_size):
        batch = source.select(slice(s, s + batch_size))
        chunks.append(z_at(parts, batch.input_ids.to(device), pos[s : s + batch_size].to(device)))
    per_layer = [torch.cat(zs) for zs in zip(*chunks, strict=True)]  # [N, P, H, dh]
    return {p: [z[:, i] for z in per_layer] for i, p in enumerate(positions)}


def group_edits(
    heads: Sequence[Head], keep: torch.Tensor, positions: torch.Tensor, src: list[torch.Tensor], rows: torch.Tensor
) -> SuffixEdits:
    """Edits mixing ``heads`` (weights ``keep``) towards the source at ``positions``, for split rows ``rows``."""
    by_layer: dict[int, list[int]] = {}
    for j, (layer, _) in enumerate(heads):
        by_layer.setdefault(layer, []).append(j)

    def make(local: torch.Tensor, start: int) -> dict[tuple[str, int], Any]:
        g = rows.to(local.device)[local]
        edits = {}
        for layer, js in by_layer.items():
            idx = torch.tensor([heads[j][1] for j in js])
            values = src[layer].to(local.device)[g][:, idx]
            edits[("z", layer)] = mix(positions.to(local.device)[g] - start, idx, values, keep[js])
        return edits

    return make


def patched_group_logits(
    parts: ModelParts,
    runs: BaseRuns,
    rows: torch.Tensor,
    heads: Sequence[Head],
    keep: torch.Tensor,
    positions: torch.Tensor,
    src: list[torch.Tensor],
) -> torch.Tensor:
    """Last-token logits of base rows ``rows`` with the group's heads mixed towards the source."""
    clean = runs.get(rows)
    if not heads:
        return clean.logits
    first = min(layer for layer, _ in heads)
    start = positions[rows].to(runs.device)
    return patched_logits(parts, clean, start, first, group_edits(heads, keep, positions, src, rows))


def share(hits: torch.Tensor) -> float:
    """The share of true outcomes (NaN when there are none)."""
    return int(hits.sum()) / len(hits) if len(hits) else float("nan")


@torch.no_grad()
def outcomes_with(
    parts: ModelParts,
    runs: BaseRuns,
    pairs: PairSet,
    heads: Sequence[Head],
    keep: torch.Tensor,
    position: str,
    src: list[torch.Tensor],
) -> torch.Tensor:
    """Per pair (``[N]`` bool, pair order): is the prediction the desideratum's label, with the mask ``keep``."""
    if not heads:  # nothing patched: the plain model's predictions
        return runs.predictions == pairs.labels
    positions = getattr(pairs.base, position)
    hits = torch.zeros(len(pairs), dtype=torch.bool)
    for rows in runs.batches():
        logits = patched_group_logits(parts, runs, rows, heads, keep, positions, src)
        hits[rows] = logits.argmax(-1).cpu() == pairs.labels[rows]
    return hits


def accuracy_with(
    parts: ModelParts,
    runs: BaseRuns,
    pairs: PairSet,
    heads: Sequence[Head],
    keep: torch.Tensor,
    position: str,
    src: list[torch.Tensor],
) -> float:
    """Share of base prompts whose prediction is the desideratum's label, with the mask ``keep`` applied."""
    return share(outcomes_with(parts, runs, pairs, heads, keep, position, src))


@dataclass
class Split:
    """One DCM split, ready: pairs, base clean runs and the source ``z`` at the group's position."""

    pairs: PairSet
    runs: BaseRuns
    src: list[torch.Tensor]


def dcm_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, lam: float) -> torch.Tensor:
    """``-mean(logit of the label) + lam * sum(1 - mask)``: the raw logit, as in the paper."""
    target = logits.gather(1, labels.to(logits.device)[:, None])[:, 0]
    return -target.mean() + lam * (1 - mask).sum()


def train_mask(
    parts: ModelParts,
    heads: Sequence[Head],
    position: str,
    train: Split,
    val: Split,
    settings: dict[str, Any],
    desc: str = "dcm",
) -> dict[str, Any]:
    """Learn the group's mask on ``train``; the best binarised mask on ``val``, the validation curve, the final mask."""
    n = len(heads)
    mask = torch.ones(n, requires_grad=True)
    optimizer = torch.optim.Adam([mask], lr=settings["lr"])
    gen = torch.Generator().manual_seed(settings["seed"])
    positions = getattr(train.pairs.base, position)
    val_cache: dict[tuple[int, ...], float] = {}
    curve: list[dict[str, Any]] = []
    best: dict[str, Any] = {"accuracy": -1.0, "selected": -1}
    step = 0
    total = settings["epochs"] * -(-len(train.pairs) // settings["batch_size"])
    with tqdm(total=total, desc=desc, unit="step", leave=False, disable=None) as bar:
        for _ in range(settings["epochs"]):
            order = torch.randperm(len(train.pairs), generator=gen)
            for s in range(0, len(order), settings["batch_size"]):
                rows = order[s : s + settings["batch_size"]]
                with torch.no_grad():
                    mask.clamp_(0, 1)
                logits = patched_group_logits(parts, train.runs, rows, heads, mask, positions, train.src)
                loss = dcm_loss(logits, train.pairs.labels[rows], mask, settings["lambda"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step % settings["validate_every"] == 0:
                    binary = mask.detach().clamp(0, 1).round()
                    key = tuple(int(v) for v in binary.tolist())
                    if key not in val_cache:
                        val_cache[key] = accuracy_with(parts, val.runs, val.pairs, heads, binary, position, val.src)
                    acc, chosen = val_cache[key], n - sum(key)
                    curve.append({"step": step, "loss": loss.item(), "val_accuracy": acc, "selected": chosen})
                    if acc > best["accuracy"] or (acc == best["accuracy"] and chosen > best["selected"]):
                        best = {"accuracy": acc, "selected": chosen, "step": step, "mask": mask.detach().clone()}
                step += 1
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
    return {"best": best, "curve": curve, "final": mask.detach().clone()}


def run_group(
    parts: ModelParts,
    heads: Sequence[Head],
    position: str,
    train: Split,
    val: Split,
    test: Split,
    settings: dict[str, Any],
    desc: str = "dcm",
) -> dict[str, Any]:
    """Train (when the group has heads), then score the best mask and the no-op floor on the test split."""
    floor_hits = outcomes_with(parts, test.runs, test.pairs, [], torch.ones(0), position, test.src)
    floor, floor_outcomes = share(floor_hits), outcome_string(floor_hits)
    if not heads:
        return {"mask": [], "selected": [], "validation": [], "best_step": None, "val_accuracy": None,
                "test_accuracy": floor, "chance_floor": floor, "test_outcomes": floor_outcomes,
                "floor_outcomes": floor_outcomes}  # fmt: skip
    trained = train_mask(parts, heads, position, train, val, settings, desc)
    best = trained["best"]
    mask = best["mask"].clamp(0, 1)
    binary = mask.round()
    test_hits = outcomes_with(parts, test.runs, test.pairs, heads, binary, position, test.src)
    test_acc = share(test_hits)
    return {
        "mask": [round(float(v), 6) for v in mask],
        "selected": [list(h) for h, b in zip(heads, binary.tolist(), strict=True) if b == 0],
        "validation": trained["curve"],
        "best_step": best["step"],
        "val_accuracy": best["accuracy"],
        "test_accuracy": test_acc,
        "chance_floor": floor,
        "test_outcomes": outcome_string(test_hits),
        "floor_outcomes": floor_outcomes,
    }


def run_dcm(
    circuit_name: str,
    source: ModelSource,
    circuit_file: str | Path,
    records_files: dict[str, str | Path],
    desiderata_dir: str | Path,
    out_root: str | Path,
    plan: Sequence[tuple[str, str]],
    settings: dict[str, Any],
) -> list[dict[str, Any]]:
    """Rule dcm: every (group, desideratum) of ``plan`` for one circuit, on the model it was found in.
    ``settings``: the ``dcm`` section (the :data:`TRAINING_KEYS`, ``eval_batch_size``, ``cache_clean_runs``)."""
    from entity_tracking.circuits import load_circuit
    from entity_tracking.io import read_jsonl, sha256_file, write_json
    from entity_tracking.models import load_source

    model = source.name
    bs = settings["eval_batch_size"]  # clean runs, sources, validation and test (training: batch_size)
    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    circuit = load_circuit(circuit_file, parts.num_layers, parts.heads)
    records = {split: read_jsonl(records_files[split]) for split in SPLITS}
    bases = {split: encode_records(loaded.tokenizer, recs, vocab) for split, recs in records.items()}
    # the base prompts are the split's records for every desideratum: one clean run each, shared
    runs = {split: BaseRuns(parts, bases[split], bs, settings["cache_clean_runs"]) for split in SPLITS}
    results = []
    for desideratum in dict.fromkeys(d for _, d in plan):
        files = {split: desiderata_file(desiderata_dir, desideratum, split) for split in SPLITS}
        pairs = {
            split: encode_pairs(loaded.tokenizer, read_jsonl(files[split]), records[split], bases[split], vocab)
            for split in SPLITS
        }
        groups = [g for g, d in plan if d == desideratum]
        positions = list(dict.fromkeys(POSITION_OF[g] for g in groups))
        src = {split: runs[split].sources(pairs[split], positions) for split in SPLITS}
        for group in groups:
            position = POSITION_OF[group]
            train, val, test = (Split(pairs[s], runs[s], src[s][position]) for s in SPLITS)
            heads = circuit[group]
            out = run_group(parts, heads, position, train, val, test, settings, desc=f"DCM {group} {desideratum}")
            log.info(
                "DCM %s / %s / %s: selected %d of %d heads, test accuracy %.3f (chance floor %.3f)",
                circuit_name, group, desideratum, len(out["selected"]), len(heads), out["test_accuracy"],
                out["chance_floor"],
            )  # fmt: skip
            result = {
                "circuit": circuit_name,
                "model": model,
                "group": group,
                "desideratum": desideratum,
                "position": position,
                "heads": [list(h) for h in heads],
                **out,
                "records": {s: len(pairs[s]) for s in SPLITS},
                "desiderata_sha256": {s: sha256_file(files[s]) for s in SPLITS},
                "circuit_sha256": sha256_file(circuit_file),
                "settings": {k: settings[k] for k in TRAINING_KEYS},
            }
            write_json(dcm_result_path(out_root, circuit_name, group, desideratum), result)
            results.append(result)
    return results
