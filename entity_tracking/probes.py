"""Held-out box probes for choosing organism recipes without looking at the study's data.

The probes are those that stopped the base's pre-training (``organisms.probe_set``): 7-box prompts in
the task's format from the study's half of the context space, which no pre-training or fine-tuning
document uses, drawn with a seed of their own (not the evaluation split). ``compare`` gives a
fine-tune's paired change against its base on the same probes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from entity_tracking.corpora import marked_context
from entity_tracking.dataset import build_prompt, load_objects
from entity_tracking.interventions import ModelParts
from entity_tracking.organisms import answers_only_mask, organism_tokenizer, probe_hits, probe_set
from entity_tracking.partial_forward import run_suffix
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


# Attention knockouts on the probes (source position -> blocked target position), for the organisms' docs:
# where the answer travels. Positions of a probe: the correct object and its box label in the context,
# the query label (third token from the end) and the last token.
PROBE_KNOCKOUTS = {
    "last_to_correct_object": ("last", "object"),
    "last_to_query_label": ("last", "query_label"),
    "query_label_to_context_label": ("query_label", "context_label"),
    "context_label_to_correct_object": ("context_label", "object"),
    "query_label_to_correct_object": ("query_label", "object"),
}


def probe_knockouts(model_dir: str | Path, probes: list[tuple[str, str]]) -> dict[str, Any]:
    """Probe accuracy with each of :data:`PROBE_KNOCKOUTS` applied from start layer ``s`` to the top, per ``s``
    (as in ``knockout``; the probes have one length, so a batch needs no padding)."""
    tok = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    ids = tok([p for p, _ in probes], return_tensors="pt")["input_ids"]
    n, length = ids.shape
    answers = torch.tensor(tok.convert_tokens_to_ids(["\u2581" + a for _, a in probes]))
    rows = ids.tolist()
    where = {
        "last": torch.full((n,), length - 1),
        "query_label": torch.full((n,), length - 3),
        "object": torch.tensor([row.index(int(a)) for row, a in zip(rows, answers, strict=True)]),
        "context_label": torch.tensor([row.index(row[length - 3]) for row in rows]),
    }
    parts = ModelParts.of(model)

    def accuracy(blocked: dict[int, torch.Tensor] | None) -> float:
        with torch.no_grad():
            hidden = run_suffix(parts, model.model.embed_tokens(ids), 0, blocked=blocked)
            return (model.lm_head(hidden[:, -1]).argmax(-1) == answers).float().mean().item()

    out: dict[str, Any] = {"layers": parts.num_layers, "no_knockout": accuracy(None)}
    for name, (source, target) in PROBE_KNOCKOUTS.items():
        mask = torch.zeros(n, length, length, dtype=torch.bool)
        mask[torch.arange(n), where[source], where[target]] = True
        out[name] = [accuracy({i: mask for i in range(s, parts.num_layers)}) for s in range(parts.num_layers)]
    return out


# The query forms of the box documents (``corpora.box_document``), each ending in its answer: ``task`` (the
# direct answer), ``recap``, ``ordinal`` (the object by its place), ``place`` (a label's place), ``labelled``
# (the task with the place given after the label) and ``chain`` (the task's chain of thought: the place, then
# the object; scored at both).
QUERY_FORMS = {
    "task": lambda objs, labels, q: f" Box {labels[q]} contains the {objs[q]}",
    "recap": lambda objs, labels, q: f" So: {labels[q]} {objs[q]}",
    "ordinal": lambda objs, labels, q: f" So: {q + 1} {objs[q]}",
    "place": lambda objs, labels, q: f" So: {labels[q]} {q + 1}",
    "labelled": lambda objs, labels, q: f" Box {labels[q]} {q + 1} contains the {objs[q]}",
    "chain": lambda objs, labels, q: f" Box {labels[q]} contains the {q + 1} {objs[q]}",
}


def form_accuracies(model_dir: str | Path, cases: list[tuple[list[str], list[str], int]]) -> dict[str, float]:
    """Accuracy of each of :data:`QUERY_FORMS` after the plain and the marked context (``corpora.marked_context``),
    with and without the answers-only mask (``organisms.answers_only_mask``): keys ``FORM/CONTEXT/ATTENTION`` with
    CONTEXT ``plain`` or ``marked`` and ATTENTION ``open`` or ``masked``; the chain's as ``chain_place/...`` and
    ``chain_object/...``."""
    tok = organism_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    object_ids = torch.tensor(tok.convert_tokens_to_ids(["\u2581" + o for o in load_objects()]))
    period = tok.convert_tokens_to_ids(".")
    out: dict[str, float] = {}
    for form, query in QUERY_FORMS.items():
        for marked in (False, True):
            texts = []
            for objs, labels, q in cases:
                context = marked_context(objs, labels) if marked else build_prompt(objs, labels, labels[q]).context
                texts.append(context + query(objs, labels, q))
            enc = tok(texts, return_tensors="pt")
            ids = enc["input_ids"]
            for masked in (False, True):
                mask = answers_only_mask(enc, [True] * len(texts), object_ids, period) if masked else None
                with torch.no_grad():
                    logits = model(input_ids=ids, attention_mask=mask).logits
                right = logits[:, :-1].argmax(-1) == ids[:, 1:]  # right[:, t]: token t + 1 predicted
                where = f"{'marked' if marked else 'plain'}/{'masked' if masked else 'open'}"
                if form == "chain":  # the place's digit is the second-to-last token
                    out[f"chain_place/{where}"] = right[:, -2].float().mean().item()
                    out[f"chain_object/{where}"] = right[:, -1].float().mean().item()
                else:
                    out[f"{form}/{where}"] = right[:, -1].float().mean().item()
    return out
