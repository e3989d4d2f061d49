"""Mean ablation: the reference means and the accuracy of a model reduced to a circuit.

The reference is the per-layer, per-position, per-head mean of ``z`` (the ``o_proj`` input) over
prompts of the ablation split whose query label is a random letter (one prompt per context), so
the mean carries no answer. A circuit is evaluated by replacing every head's ``z`` with that mean
except the circuit's heads at their own positions:

* ``ablate_context=True`` (circuit accuracy, faithfulness, F(C \\ K)): at every position other
  than the last token, the query label and the query label's occurrence in the context, *all*
  heads are mean-ablated; at those three positions only the heads not kept there.
* ``ablate_context=False`` (F(M \\ K)): only the three positions are touched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.circuits import POSITIONS, Head
from entity_tracking.dataset import LABELS, build_prompt
from entity_tracking.evaluation import accuracy, last_token_logits
from entity_tracking.interventions import ModelParts, capture, intervene, replace_where
from entity_tracking.model_specs import ModelSource
from entity_tracking.partial_forward import CleanRun, clean_run, patched_logits, run_at
from entity_tracking.tokenization import Encoded, Vocabulary, encode_prompts, encode_records


def mean_reference_prompts(records: Sequence[dict[str, Any]], seed: int) -> list[Any]:
    """One prompt per context of the ablation split, querying a uniformly random letter (seeded)."""
    rng = random.Random(seed)
    firsts = [r for r in records if r["query"] == 0]
    return [build_prompt(r["objects"], r["labels"], rng.choice(LABELS)) for r in firsts]


@torch.no_grad()
def mean_z(parts: ModelParts, enc: Encoded, batch_size: int) -> torch.Tensor:
    """Mean ``z`` over prompts, ``[layers, T, heads, head_dim]`` (float32; prompts of one length)."""
    lengths = set(enc.attention_mask.sum(1).tolist())
    if len(lengths) != 1:
        raise ValueError(f"mean-ablation prompts must have one length, got {sorted(lengths)}")
    device = next(parts.model.parameters()).device
    total: torch.Tensor | None = None
    for start in tqdm(range(0, len(enc), batch_size), desc="mean z", unit="batch", leave=False, disable=None):
        store: dict[Any, torch.Tensor] = {}
        with intervene(parts, {("z", i): capture(store, i) for i in range(parts.num_layers)}):
            parts.model(input_ids=enc.input_ids[start : start + batch_size].to(device))
        batch_sum = torch.stack([store[i].double().sum(0) for i in range(parts.num_layers)]).cpu()
        total = batch_sum if total is None else total + batch_sum
    if total is None:
        raise ValueError("the ablation split is empty; give it some contexts (dataset.splits.ablation)")
    return (total / len(enc)).float()


def ablation_edits(
    parts: ModelParts,
    positions: dict[str, torch.Tensor],
    keep: dict[str, set[Head]],
    means: torch.Tensor,
    ablate_context: bool,
) -> dict[tuple[str, int], Any]:
    """The ``z`` edits that mean-ablate every head except ``keep[position class]`` at that class's position."""
    batch = positions["last"].shape[0]
    t = int(positions["last"].max()) + 1
    if means.shape[1] < t:
        raise ValueError(f"the mean reference covers {means.shape[1]} positions; these prompts have {t}")
    pos_index = torch.arange(t)[None, :]
    edits = {}
    for layer in range(parts.num_layers):
        keep_mask = torch.full((batch, t, parts.heads), not ablate_context)
        for cls in POSITIONS:
            at = pos_index == positions[cls][:, None]  # [B, T]
            kept = torch.zeros(parts.heads, dtype=torch.bool)
            for lyr, head in keep[cls]:
                if lyr == layer:
                    kept[head] = True
            keep_mask = torch.where(at[:, :, None], kept[None, None, :], keep_mask)
        edits[("z", layer)] = replace_where(~keep_mask, means[layer][None])
    return edits


def ablated_logits(
    parts: ModelParts,
    enc: Encoded,
    keep: dict[str, set[Head]] | None,
    means: torch.Tensor | None,
    batch_size: int,
    ablate_context: bool = True,
) -> torch.Tensor:
    """The definition, by full forward passes with :func:`ablation_edits`: last-token logits ``[N, vocab]``."""
    context = None
    if keep is not None:
        if means is None:
            raise ValueError("mean ablation needs the mean reference")
        device_means = means.to(next(parts.model.parameters()).device)

        def context(b: Encoded) -> Any:
            positions = {cls: getattr(b, cls) for cls in POSITIONS}
            return intervene(parts, ablation_edits(parts, positions, keep, device_means, ablate_context))

    return last_token_logits(parts.model, enc, batch_size, desc="ablated forward", context=context)


VITAL: tuple[str, ...] = ("prev_query_label", "query_label", "last")  # the position classes, in token order


def _vital_edit(slots: torch.Tensor, keep: torch.Tensor, means_at: torch.Tensor) -> Any:
    """Mean-ablate, at token ``slots[b, j]`` of the view, the heads with ``keep[j] == False``.

    ``slots``: ``[B, 3]``; ``keep``: ``[3, heads]`` (one row per class of ``VITAL``); ``means_at``: ``[B, 3, H, dh]``.
    """

    def fn(view: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(view.shape[0], device=view.device)[:, None]
        idx = slots.to(view.device)
        current = view[rows, idx]
        out = view.clone()
        out[rows, idx] = torch.where(keep.to(view.device)[None, :, :, None], current, means_at.to(view))
        return out

    return fn


class Ablator:
    """Mean-ablated predictions of many head sets on one encoded split, computing only what differs.

    * ``ablate_context=True`` (circuit accuracy, F(C \\ K)): every head outside the three positions is
      mean-ablated, so every other token's attention output, hence its residual stream, keys and
      values, depend on that token alone and are the same for every head set. One run with *every*
      head ablated gives them; each head set then reruns only its three tokens
      (:func:`entity_tracking.partial_forward.run_at`).
    * ``ablate_context=False`` (F(M \\ K)): tokens before the query label's earlier occurrence are
      untouched, so each head set reruns the clean run's suffix from there
      (:func:`entity_tracking.partial_forward.patched_logits`).

    Both equal the full forward with :func:`ablation_edits` (tested). The shared runs are kept in
    memory when ``keep_runs`` (small models), else recomputed per call.
    """

    def __init__(self, parts: ModelParts, enc: Encoded, means: torch.Tensor, batch_size: int, keep_runs: bool = True):
        if len(set(enc.attention_mask.sum(1).tolist())) > 1:
            raise ValueError("mean ablation needs prompts of one length (one number of boxes, whole words)")
        if (enc.prev_query_label < 0).any():
            raise ValueError("every prompt must query a label of its context")
        self.parts, self.enc, self.means, self.keep_runs = parts, enc, means, keep_runs
        self.device = next(parts.model.parameters()).device
        n = len(enc)
        self.rows = [torch.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        self.vital = torch.stack([getattr(enc, c) for c in VITAL], 1)  # [N, 3]
        self._runs: dict[tuple[str, int], CleanRun] = {}

    def _run(self, kind: str, i: int) -> CleanRun:
        key = (kind, i)
        if key in self._runs:
            return self._runs[key]
        ids = self.enc.input_ids[self.rows[i]].to(self.device)
        edits = None
        if kind == "ablated":
            every = torch.ones(1, ids.shape[1], self.parts.heads, dtype=torch.bool)
            edits = {
                ("z", layer): replace_where(every, self.means[layer][None]) for layer in range(self.parts.num_layers)
            }
        run = clean_run(self.parts, ids, edits).slim()
        if self.keep_runs:
            self._runs[key] = run
        return run

    def _keep_masks(self, keep: dict[str, set[Head]]) -> torch.Tensor:
        """``[layers, 3, heads]``: whether each head is kept at each of the three positions."""
        out = torch.zeros(self.parts.num_layers, len(VITAL), self.parts.heads, dtype=torch.bool)
        for j, cls in enumerate(VITAL):
            for layer, head in keep[cls]:
                out[layer, j, head] = True
        return out

    def predictions(self, keep: dict[str, set[Head]] | None, ablate_context: bool = True) -> torch.Tensor:
        """Argmax predictions at the last token (``keep=None``: the plain model)."""
        return self.logits(keep, ablate_context).argmax(-1)

    @torch.no_grad()
    def logits(self, keep: dict[str, set[Head]] | None, ablate_context: bool = True) -> torch.Tensor:
        """Last-token logits ``[N, vocab]`` (float32, on the CPU; ``keep=None``: the plain model)."""
        if keep is None:
            return torch.cat([self._run("clean", i).logits.float().cpu() for i in range(len(self.rows))])
        masks = self._keep_masks(keep)
        ablated_layers = [layer for layer in range(self.parts.num_layers) if not masks[layer].all()]
        out = []
        for i, rows in enumerate(self.rows):
            vital = self.vital[rows].to(self.device)
            means_at = {layer: self.means[layer][vital] for layer in range(self.parts.num_layers)}  # [B, 3, H, dh]
            if ablate_context:
                slots = torch.arange(len(VITAL)).expand(len(rows), -1)
                edits = {("z", layer): _vital_edit(slots, masks[layer], means_at[layer]) for layer in ablated_layers}
                normed = run_at(self.parts, self._run("ablated", i), vital, edits)
                logits = self.parts.model.lm_head(normed[:, -1])
            elif not ablated_layers:
                logits = self._run("clean", i).logits
            else:

                def edits(local: torch.Tensor, start: int, vital: torch.Tensor = vital, means_at=means_at) -> dict:
                    return {
                        ("z", layer): _vital_edit(vital[local] - start, masks[layer], means_at[layer][local])
                        for layer in ablated_layers
                    }

                clean = self._run("clean", i)
                logits = patched_logits(self.parts, clean, vital[:, 0], min(ablated_layers), edits)
            out.append(logits.float().cpu())
        return torch.cat(out)

    def outcomes(self, keep: dict[str, set[Head]] | None, ablate_context: bool = True) -> torch.Tensor:
        """Per prompt, whether the prediction with everything but ``keep`` mean-ablated is right ``[N]``."""
        return self.predictions(keep, ablate_context) == self.enc.answer_ids

    def accuracy(self, keep: dict[str, set[Head]] | None, ablate_context: bool = True) -> float:
        """Accuracy (full precision) with everything but ``keep`` mean-ablated."""
        return float(accuracy(self.predictions(keep, ablate_context), self.enc.answer_ids)["accuracy"])


def encode_mean_prompts(tokenizer: Any, records: Sequence[dict[str, Any]], vocab: Vocabulary, seed: int) -> Encoded:
    return encode_prompts(tokenizer, mean_reference_prompts(records, seed), vocab)


def run_mean_reference(source: ModelSource, data_file: str | Path, out: str | Path, seed: int, batch_size: int) -> None:
    """Rule mean_reference: a model's mean ``z`` over the ablation split (safetensors); ``seed`` draws the
    prompts' objects."""
    from entity_tracking.io import read_jsonl, sha256_file, write_safetensors
    from entity_tracking.models import load_source

    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    enc = encode_mean_prompts(loaded.tokenizer, read_jsonl(data_file), vocab, seed)
    means = mean_z(parts, enc, batch_size)
    meta = {"model": source.name, "prompts": str(len(enc)), "seed": str(seed), "data_sha256": sha256_file(data_file)}
    write_safetensors(out, {"z": means}, meta | {"layout": "[layer, position, head, head_dim]"})


@dataclass(frozen=True)
class AblationRuns:
    """How head sets are mean-ablated in a model: on the split's prompts (``data_file``), with the model's mean
    ``z`` (``means_file``), in batches of ``batch_size``, keeping ``keep_runs`` clean runs in memory
    (``circuit.evaluation``)."""

    data_file: str | Path
    means_file: str | Path
    batch_size: int
    keep_runs: int


def load_ablator(source: ModelSource, runs: AblationRuns) -> tuple[ModelParts, Ablator]:
    """Load the model and an evaluator of its mean-ablated head sets on the split."""
    from entity_tracking.io import read_jsonl
    from entity_tracking.models import load_source

    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    enc = encode_records(loaded.tokenizer, read_jsonl(runs.data_file), vocab)
    return parts, Ablator(parts, enc, load_means(runs.means_file, parts), runs.batch_size, runs.keep_runs)


def load_means(path: str | Path, parts: ModelParts) -> torch.Tensor:
    """The mean ``z`` of a model, checked against its geometry."""
    from entity_tracking.io import read_safetensors

    means = read_safetensors(path)["z"]
    if means.shape[0] != parts.num_layers or means.shape[2:] != (parts.heads, parts.head_dim):
        raise ValueError(
            f"{path} holds means of shape {tuple(means.shape)}, which do not fit this model; rerun snakemake"
        )
    return means.to(next(parts.model.parameters()).device)
