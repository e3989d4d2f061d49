"""Task accuracy: greedy argmax over the whole vocabulary at the last prompt token."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from statistics import NormalDist
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.io import atomic_write, read_json, read_jsonl, sha256_file, write_csv, write_json
from entity_tracking.model_specs import ModelSource
from entity_tracking.models import LoadedModel, load_source
from entity_tracking.stats import outcome_string
from entity_tracking.tokenization import Encoded, encode_records

log = logging.getLogger(__name__)


@torch.no_grad()
def last_token_logits(
    model: torch.nn.Module,
    enc: Encoded,
    batch_size: int,
    desc: str = "forward",
    context: Callable[[Encoded], AbstractContextManager[Any]] | None = None,
) -> torch.Tensor:
    """Logits at each prompt's last token, ``[N, vocab]``, computed in batches (float32, on the CPU).

    ``context(batch)``, when given, is entered around each batch's forward pass (interventions
    that depend on the batch's positions).
    """
    device = next(model.parameters()).device
    out = []
    for start in tqdm(range(0, len(enc), batch_size), desc=desc, unit="batch", leave=False, disable=None):
        batch = enc.select(slice(start, start + batch_size))
        with context(batch) if context is not None else nullcontext():
            logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)).logits
        rows = torch.arange(len(batch), device=device)
        out.append(logits[rows, batch.last.to(device)].float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (well-behaved at 0 and 1)."""
    if total == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact bounds at the edges, free of rounding
    high = 1.0 if correct == total else min(1.0, centre + half)
    return (low, high)


def accuracy(predicted: torch.Tensor, answers: torch.Tensor, confidence: float = 0.95) -> dict[str, Any]:
    """Accuracy at full precision (never rounded) with its confidence interval and its per-record outcomes
    (``outcomes``: ``0``/``1`` per record, in record order, for paired tests on the same prompts)."""
    hits = predicted == answers
    correct = int(hits.sum())
    total = len(answers)
    low, high = wilson_interval(correct, total, confidence)
    return {
        "records": total,
        "correct": correct,
        "accuracy": correct / total if total else float("nan"),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "outcomes": outcome_string(hits),
    }


def evaluate(
    loaded: LoadedModel, enc: Encoded, batch_size: int, confidence: float = 0.95
) -> tuple[dict[str, Any], torch.Tensor]:
    """Accuracy of the model on encoded prompts, and its predicted token ids."""
    predicted = last_token_logits(loaded.model, enc, batch_size, desc=f"evaluate {loaded.name}").argmax(-1)
    return accuracy(predicted, enc.answer_ids, confidence), predicted


def run_evaluation(
    source: ModelSource,
    label: str,
    role: str,
    data_file: str | Path,
    out_json: str | Path,
    out_csv: str | Path,
    batch_size: int,
    confidence: float,
) -> dict[str, Any]:
    """Evaluate a model on a dataset split; write the summary JSON and a per-record CSV (Wilson intervals at
    ``confidence``)."""
    name = source.name
    loaded, vocab = load_source(source)
    records = read_jsonl(data_file)
    enc = encode_records(loaded.tokenizer, records, vocab)
    summary, predicted = evaluate(loaded, enc, batch_size, confidence)
    result = {
        "model": name,
        "label": label,
        "role": role,
        "split": Path(data_file).stem,
        "data_sha256": sha256_file(data_file),
        **summary,
    }
    log.info("%s: accuracy %.4f (%d/%d)", name, result["accuracy"], result["correct"], result["records"])
    tokens = loaded.tokenizer.convert_ids_to_tokens(predicted.tolist())
    with atomic_write(out_csv) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "answer", "answer_id", "predicted_id", "predicted_token", "correct"])
        for rec, ans, pid, tok in zip(records, enc.answer_ids.tolist(), predicted.tolist(), tokens, strict=True):
            writer.writerow([rec["id"], rec["answer"], ans, pid, tok, int(ans == pid)])
    write_json(out_json, result)
    return result


TABLE_COLUMNS = ("model", "label", "role", "split", "records", "correct", "accuracy", "ci_low", "ci_high", "confidence")


def write_accuracy_table(json_files: Sequence[str | Path], out_csv: str | Path) -> None:
    """Combine per-model evaluation JSONs into one CSV, one row per model, in the given order."""
    write_csv(out_csv, TABLE_COLUMNS, (read_json(path) for path in json_files))
