"""Held-out box probes for choosing organism recipes without looking at the study's data.

The probes are those that stopped the base's pre-training (``organisms.probe_set``): 7-box prompts in
the task's format from the study's half of the context space, which no pre-training or fine-tuning
document uses, drawn with a seed of their own (not the evaluation split). ``compare`` gives a
fine-tune's paired change against its base on the same probes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from entity_tracking.organisms import probe_hits, probe_set
from entity_tracking.stats import paired_test


def box_probes(seed: int, n: int) -> list[tuple[str, str]]:
    """``n`` seeded ``(prompt, answer)`` 7-box probes (``organisms.probe_set``)."""
    return probe_set(seed, 7, n)


def probe_outcomes(
    model_dir: str | Path, probes: list[tuple[str, str]], tokenizer_dir: str | Path | None = None
) -> str:
    """``"0110..."``: whether the model's greedy next token is each probe's answer (``organisms.probe_hits``)."""
    tok = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir or model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    return "".join("1" if hit else "0" for hit in probe_hits(model, tok, probes).tolist())


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
