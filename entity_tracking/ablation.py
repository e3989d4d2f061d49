"""Mean ablation (paper §5.1): the reference means and the accuracy of a model reduced to a circuit.

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
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.circuits import POSITIONS, Head
from entity_tracking.dataset import LABELS, build_prompt
from entity_tracking.evaluation import accuracy, last_token_logits
from entity_tracking.interventions import ModelParts, capture, intervene, replace_where
from entity_tracking.tokenization import Encoded, Vocabulary, encode_prompts


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
    for start in tqdm(range(0, len(enc), batch_size), desc="mean z", unit="batch", leave=False):
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


def ablated_predictions(
    parts: ModelParts,
    enc: Encoded,
    keep: dict[str, set[Head]] | None,
    means: torch.Tensor | None,
    batch_size: int,
    ablate_context: bool = True,
) -> torch.Tensor:
    """Argmax predictions at the last token with the ablation applied (``keep=None``: the plain model)."""
    context = None
    if keep is not None:
        if means is None:
            raise ValueError("mean ablation needs the mean reference")
        device_means = means.to(next(parts.model.parameters()).device)

        def context(b: Encoded) -> Any:
            positions = {cls: getattr(b, cls) for cls in POSITIONS}
            return intervene(parts, ablation_edits(parts, positions, keep, device_means, ablate_context))

    return last_token_logits(parts.model, enc, batch_size, desc="ablated forward", context=context).argmax(-1)


def ablated_accuracy(
    parts: ModelParts,
    enc: Encoded,
    keep: dict[str, set[Head]] | None,
    means: torch.Tensor | None,
    batch_size: int,
    ablate_context: bool = True,
) -> float:
    """Accuracy (full precision) of the model with everything but ``keep`` mean-ablated."""
    preds = ablated_predictions(parts, enc, keep, means, batch_size, ablate_context)
    return float(accuracy(preds, enc.answer_ids)["accuracy"])


def encode_mean_prompts(tokenizer: Any, records: Sequence[dict[str, Any]], vocab: Vocabulary, seed: int) -> Encoded:
    return encode_prompts(tokenizer, mean_reference_prompts(records, seed), vocab)


def run_mean_reference(cfg: dict[str, Any], name: str, data_file: str | Path, out: str | Path) -> None:
    """Rule mean_reference: model ``name``'s mean ``z`` over the ablation split (safetensors)."""
    from entity_tracking.io import read_jsonl, sha256_file, write_safetensors
    from entity_tracking.models import load_for_study

    loaded, vocab = load_for_study(cfg, name)
    parts = ModelParts.of(loaded.model)
    seed = cfg["circuit"]["mean_seed"]
    enc = encode_mean_prompts(loaded.tokenizer, read_jsonl(data_file), vocab, seed)
    means = mean_z(parts, enc, cfg["circuit"]["evaluation"]["batch_size"])
    meta = {"model": name, "prompts": str(len(enc)), "seed": str(seed), "data_sha256": sha256_file(data_file)}
    write_safetensors(out, {"z": means}, meta | {"layout": "[layer, position, head, head_dim]"})


def load_means(path: str | Path, parts: ModelParts) -> torch.Tensor:
    """The mean ``z`` of a model, checked against its geometry."""
    from entity_tracking.io import read_safetensors

    means = read_safetensors(path)["z"]
    if means.shape[0] != parts.num_layers or means.shape[2:] != (parts.heads, parts.head_dim):
        raise ValueError(
            f"{path} holds means of shape {tuple(means.shape)}, which do not fit this model; rerun snakemake"
        )
    return means.to(next(parts.model.parameters()).device)
