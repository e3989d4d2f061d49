"""Held-out box probes for choosing organism recipes without looking at the study's data.

A probe is a 7-box prompt in the task's format whose context lies in the training half of the context
space (``dataset.context_is_for_study`` is false), so recipes are selected on prompts that no split of
the study holds. ``compare`` gives a fine-tune's paired change against its base on the same probes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from entity_tracking.dataset import LABELS, build_prompt, context_is_for_study, load_objects
from entity_tracking.stats import paired_test


def box_probes(seed: int, n: int, num_boxes: int = 7) -> list[tuple[str, str]]:
    """``n`` seeded ``(prompt, answer)`` pairs from contexts outside the study's half of the context space."""
    rng, objects = random.Random(seed), load_objects()
    probes: list[tuple[str, str]] = []
    while len(probes) < n:
        objs, labels = rng.sample(objects, num_boxes), rng.sample(LABELS, num_boxes)
        if context_is_for_study(objs, labels):
            continue
        query = rng.randrange(num_boxes)
        probes.append((build_prompt(objs, labels, labels[query]).text, objs[query]))
    return probes


def probe_outcomes(
    model_dir: str | Path, probes: list[tuple[str, str]], tokenizer_dir: str | Path | None = None
) -> str:
    """``"0110..."``: whether the model's greedy next token is each probe's answer."""
    tok = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir or model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    out = []
    with torch.no_grad():
        for text, answer in probes:
            ids = tok(text, return_tensors="pt")["input_ids"]
            target = tok(" " + answer, add_special_tokens=False)["input_ids"][-1]
            out.append("1" if model(ids).logits[0, -1].argmax().item() == target else "0")
    return "".join(out)


def compare(base: str, tuned: str) -> dict[str, Any]:
    """A fine-tune's accuracy and its paired change from the base on the same probes, whatever its sign
    (McNemar exact, two-sided): probes gained, probes lost, p-value."""
    test = paired_test(tuned, base, alternative="two-sided")
    return {
        "accuracy": test["accuracy_a"],
        "change": test["difference"],
        "gained": test["a_only"],
        "lost": test["b_only"],
        "p_value": test["p_value"],
    }
