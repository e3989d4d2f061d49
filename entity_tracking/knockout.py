"""Attention knockout: block attention from one position to another, from layer s on.

For a condition ``from -> to`` and a start layer ``s``, every head of layers ``s..L-1`` gets the
attention score of the query at ``from`` for the key at ``to`` set to the dtype's minimum before
the softmax (on top of the causal mask), so ``from`` cannot read ``to`` in those layers. The
accuracy at the last token is reported for every ``s`` (the original plotted it against ``s + 1``).

Only the ``from`` position's attention changes, so layers below ``s`` and positions before
``from`` are as in the clean run: each knockout is a suffix run (:mod:`entity_tracking.partial_forward`)
of layers ``s..`` over positions ``from..``, batched over examples and working with the model's own
attention implementation (sdpa or eager), which receives the extra mask like the causal one.

Random positions (the controls) are drawn once per example from a seeded RNG (seeded per condition),
uniformly among the positions strictly before ``from`` except every position the blocked conditions
block or that carries the task: position 0 (the BOS token, or the first word when the tokenizer adds
none: the attention sink either way), the correct object (the answer), the query label's earlier
occurrence in the context (``prev_query_label``), and every position from the query label on (the
query label, the "contains" token(s) after it and the last token); the original's could hit them
(docs/differences.md, "CMAP and attention knockout").
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.evaluation import accuracy
from entity_tracking.interventions import ModelParts
from entity_tracking.io import read_json, read_jsonl, sha256_file, write_csv, write_json
from entity_tracking.model_specs import ModelSource
from entity_tracking.models import load_source
from entity_tracking.partial_forward import CleanRun, clean_run, equal_length_batches, patched_logits
from entity_tracking.tokenization import Encoded, encode_records

log = logging.getLogger(__name__)

RANDOM = "random"
# name: (from position, to position); positions are fields of Encoded, or RANDOM
CONDITIONS: dict[str, tuple[str, str]] = {
    "last_to_correct_object": ("last", "correct_object"),
    "last_to_query_label": ("last", "query_label"),
    "last_to_random": ("last", RANDOM),
    "query_label_to_prev_query_label": ("query_label", "prev_query_label"),
    "query_label_to_random": ("query_label", RANDOM),
}


def random_positions(enc: Encoded, before: str, seed: int | str) -> torch.Tensor:
    """One position per prompt (seeded), uniformly among ``1..before-1`` that precede the query label and
    are neither the correct object nor the query label's earlier occurrence."""
    rng = random.Random(seed)
    out = []
    for i in range(len(enc)):
        end = min(int(getattr(enc, before)[i]), int(enc.query_label[i]))
        excluded = {int(enc.correct_object[i]), int(enc.prev_query_label[i])}
        choices = [p for p in range(1, end) if p not in excluded]
        if not choices:
            raise ValueError(f"prompt {i} has no position before {before} to draw a random position from")
        out.append(rng.choice(choices))
    return torch.tensor(out, dtype=torch.long)


def condition_positions(enc: Encoded, condition: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(from, to)`` token positions ``[N]`` of a condition; random targets are seeded per condition."""
    src, dst = CONDITIONS[condition]
    from_pos = getattr(enc, src)
    to_pos = random_positions(enc, src, f"{seed}/{condition}") if dst == RANDOM else getattr(enc, dst)
    if bool((to_pos < 0).any()) or bool((to_pos >= from_pos).any()):
        raise ValueError(f"condition {condition}: every target position must exist and precede the source")
    return from_pos, to_pos


def knockout_logits(
    parts: ModelParts, clean: CleanRun, from_pos: torch.Tensor, to_pos: torch.Tensor, start_layer: int
) -> torch.Tensor:
    """Last-token logits ``[B, vocab]`` with attention ``from_pos[b] -> to_pos[b]`` blocked in every head
    of layers ``start_layer..``; ``to_pos`` is ``[B]`` or ``[B, P]`` (several keys blocked)."""
    t = clean.resid[0].shape[1]
    to = to_pos.view(len(to_pos), -1).to(clean.resid[0].device)

    def blocked(rows: torch.Tensor, s: int) -> dict[int, torch.Tensor]:
        mask = torch.zeros(len(rows), t - s, t, dtype=torch.bool, device=to.device)
        mask[torch.arange(len(rows), device=to.device)[:, None], 0, to[rows]] = True  # query index 0 is `from`
        return dict.fromkeys(range(start_layer, parts.num_layers), mask)

    return patched_logits(parts, clean, from_pos, start_layer, lambda rows, s: {}, blocked)


@torch.no_grad()
def knockout_curves(
    parts: ModelParts,
    enc: Encoded,
    positions: dict[str, tuple[torch.Tensor, torch.Tensor]],
    batch_size: int,
    confidence: float = 0.95,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The model's own accuracy, and per condition the accuracy for every start layer ``s = 0..L-1``."""
    device = next(parts.model.parameters()).device
    n_layers = parts.num_layers
    own = torch.empty(len(enc), dtype=torch.long)
    preds = {c: torch.empty(n_layers, len(enc), dtype=torch.long) for c in positions}
    for rows in tqdm(equal_length_batches(enc.attention_mask, batch_size), desc="knockout", unit="batch", disable=None):
        batch = enc.select(rows)
        clean = clean_run(parts, batch.input_ids.to(device))
        own[rows] = clean.logits.argmax(-1).cpu()
        for cond, (from_pos, to_pos) in positions.items():
            for s in range(n_layers):
                logits = knockout_logits(parts, clean, from_pos[rows].to(device), to_pos[rows].to(device), s)
                preds[cond][s, rows] = logits.argmax(-1).cpu()
    answers = enc.answer_ids
    curves = {
        c: [{"start_layer": s, **accuracy(preds[c][s], answers, confidence)} for s in range(n_layers)]
        for c in positions
    }
    return accuracy(own, answers, confidence), curves


def run_knockout(
    source: ModelSource,
    data_file: str | Path,
    out_json: str | Path,
    conditions: Sequence[str],
    seed: int,
    batch_size: int,
    confidence: float,
) -> dict[str, Any]:
    """Rule knockout: the knockout curves of one model, one per condition (``seed`` draws the random positions;
    Wilson intervals at ``confidence``)."""
    model = source.name
    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    enc = encode_records(loaded.tokenizer, read_jsonl(data_file), vocab)
    positions = {c: condition_positions(enc, c, seed) for c in conditions}
    own, curves = knockout_curves(parts, enc, positions, batch_size, confidence)
    bos = loaded.tokenizer.bos_token_id
    result = {
        "model": model,
        "records": len(enc),
        "data_sha256": sha256_file(data_file),
        "layers": parts.num_layers,
        "attn_implementation": loaded.model.config._attn_implementation,
        "adds_bos": bool(bos is not None and int(enc.input_ids[0, 0]) == bos),
        "seed": seed,
        "no_knockout": own,
        "conditions": {
            c: {
                "from": CONDITIONS[c][0],
                "to": CONDITIONS[c][1],
                "accuracy": [row["accuracy"] for row in curves[c]],
                "curve": curves[c],
                **({"random_positions": positions[c][1].tolist()} if CONDITIONS[c][1] == RANDOM else {}),
            }
            for c in conditions
        },
    }
    for c in conditions:
        log.info("%s %s: %s", model, c, " ".join(f"{a:.2f}" for a in result["conditions"][c]["accuracy"]))
    write_json(out_json, result)
    return result


KNOCKOUT_COLUMNS = (
    "model",
    "condition",
    "from",
    "to",
    "start_layer",
    "records",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
    "model_accuracy",
)


def write_knockout_table(files: Sequence[str | Path], out_csv: str | Path) -> None:
    """One row per model x condition x start layer."""
    rows = []
    for path in files:
        res = read_json(path)
        for cond, entry in res["conditions"].items():
            for row in entry["curve"]:
                rows.append(
                    {
                        "model": res["model"],
                        "condition": cond,
                        "from": entry["from"],
                        "to": entry["to"],
                        "model_accuracy": res["no_knockout"]["accuracy"],
                        **row,
                    }
                )
    write_csv(out_csv, KNOCKOUT_COLUMNS, rows)
