"""A small, deterministic causal-LM training loop (full fine-tuning or LoRA), with a loss log."""

from __future__ import annotations

import csv
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from entity_tracking.io import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """AdamW with linear warm-up and cosine decay to ``min_lr_ratio * lr``."""

    steps: int
    batch_size: int
    lr: float
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0

    def lr_at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, self.warmup))
        cosine = 0.5 * (1 + math.cos(math.pi * step / max(1, self.steps)))
        return self.lr * warm * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


@contextmanager
def peft_quietly() -> Iterator[None]:
    """Construct a peft model (``get_peft_model``, ``PeftModel.from_pretrained``) without the FutureWarning
    "`is_gradient_checkpointing` is deprecated" that every construction prints.

    peft (0.21.2, the latest release) reads that deprecated transformers 5 property in ``PeftModel.__init__``;
    avoiding the read would mean replacing peft's model, save and load API. Only this message is filtered, here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def lm_batch(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], loss_after: list[int | None] | None = None
) -> dict[str, torch.Tensor]:
    """Right-padded token ids with labels; padding is ignored by the loss.

    ``loss_after[i]``, when given and not ``None``, is a token id: text ``i`` is scored only after
    its first occurrence of that token (e.g. only the queries after a context).
    """
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    for i, token in enumerate(loss_after or []):
        if token is not None:
            hits = (enc["input_ids"][i] == token).nonzero()
            labels[i, : int(hits[0]) + 1 if len(hits) else None] = -100
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    next_batch: Callable[[int], dict[str, torch.Tensor]],
    schedule: Schedule,
    log_csv: str | Path | None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    eval_every: int | Callable[[int], int] = 0,
    desc: str = "train",
    stop: Callable[[int, dict[str, float]], bool] | None = None,
    first_step: int = 0,
    end_step: int | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` in place on ``next_batch(step)`` (see :func:`lm_batch`); log to a CSV.

    Only parameters with ``requires_grad`` are trained (LoRA leaves the base frozen). With ``stop``,
    training ends at the first evaluation for which ``stop(step, scores)`` is true. ``eval_every`` may
    depend on the step. ``first_step`` and ``end_step`` run part of the schedule (with a fresh
    optimizer). The loop is deterministic on the CPU for fixed seeds, data and thread count.
    """
    torch.manual_seed(schedule.seed)
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set one before training")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay, betas=(0.9, 0.98))
    model.train()
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    end = schedule.steps if end_step is None else end_step
    progress = tqdm(range(first_step, end), desc=desc, unit="step", mininterval=5, disable=None)
    for step in progress:
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr_at(step)
        loss = model(**next_batch(step)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, schedule.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        last = step == end - 1
        scores: dict[str, float] = {}
        every = eval_every(step) if callable(eval_every) else eval_every
        due = bool(every) and step % every == 0
        if step % 50 == 0 or last or due:
            row: dict[str, Any] = {"step": step, "lr": f"{schedule.lr_at(step):.3e}", "loss": f"{loss.item():.5f}"}
            if evaluate is not None and every and (due or last):
                model.eval()
                scores = evaluate()
                row.update({k: f"{v:.4f}" for k, v in scores.items()})
                model.train()
            rows.append(row)
            progress.set_postfix(loss=row["loss"])
            log.info("step %d %s", step, {k: v for k, v in row.items() if k != "step"})
        if stop is not None and scores and stop(step, scores):
            log.info("stopping at step %d: %s", step, scores)
            break
    model.eval()
    log.info("trained to step %d in %.0f s", step + 1, time.perf_counter() - start)
    if log_csv is not None:
        write_log(rows, log_csv)
    return rows


def write_log(rows: list[dict[str, Any]], log_csv: str | Path) -> None:
    """Write training-log rows to a CSV (columns: the union of the rows' keys, in order of appearance)."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_write(log_csv) as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
