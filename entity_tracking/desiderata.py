"""Desiderata for DCM and activation patching: base/source pairs and their labels.

Each example pairs a *base* record of a DCM split with a *source* prompt drawn from another
context of the same split. Patching a head group from the source into the base (at the group's
position, each prompt at its own) should make the model answer the desideratum's label if the
group carries that kind of information:

``positional``       source unchanged; label = the base's object in the source's queried segment
``object_value``     source unchanged; label = the source's own answer
``box_label_value``  a source whose query label is another of the base's labels; label = the base's
                     object in the box with that label

and eleven variants of ``positional`` whose source prompt is rewritten (used on the position
transmitter, as in the paper): extra text at the start or the end, extra tokens in the queried
segment, an extra box before or after the context, three extra labels before the queried segment,
the next segment as the label (``incorrect_segment``), the queried segment reworded or negated,
commas removed or added.

Sampling: the source's queried segment differs from the base's actual query segment; the label is
never the base's own answer, and "base answer", "object at the source's position" and "source's
answer" are always three different objects. Where this differs from the original:
docs/differences.md, "DCM and activation patching".

The *chance floor* of a desideratum is the score of an intervention that does nothing: the base
model's own predictions scored against the labels. Its data part, the share of labels equal to the
base's answer, is 0 by construction here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entity_tracking.dataset import Prompt
from entity_tracking.layout import MANIFEST, desiderata_file

ORIGINAL: tuple[str, ...] = ("positional", "object_value", "box_label_value")
ADDITIONAL: tuple[str, ...] = (
    "random_text_start",
    "random_text_end",
    "add_tokens_btw_box_and_obj",
    "add_seg_start",
    "add_seg_end",
    "add_box_before_correct_segment",
    "incorrect_segment",
    "altered_box_obj_order",
    "altered_box_obj_association",
    "no_comma",
    "add_comma",
)
DESIDERATA: tuple[str, ...] = ORIGINAL + ADDITIONAL
REWRITTEN: frozenset[str] = frozenset(ADDITIONAL) - {"incorrect_segment"}  # the others' sources are plain records
EXTRA_OBJECT, EXTRA_LABEL = "apple", "O"  # the extra box of add_seg_start / add_seg_end (as in the paper)
QUICK_DRAWS = 64  # random draws before a full scan of the split


@dataclass
class _Builder:
    """Assembles a prompt from pieces, recording the character spans of the located words."""

    text: str = ""
    objects: list[tuple[int, int]] = field(default_factory=list)
    labels: list[tuple[int, int]] = field(default_factory=list)

    def add(self, piece: str, kind: str | None = None) -> None:
        span = (len(self.text), len(self.text) + len(piece))
        self.text += piece
        if kind == "object":
            self.objects.append(span)
        elif kind == "label":
            self.labels.append(span)


def _capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


def variant_prompt(objects: Sequence[str], labels: Sequence[str], query_label: str, variant: str) -> Prompt:
    """The prompt ``build_prompt`` makes, rewritten as desideratum ``variant`` asks (``plain``: unchanged).

    Segment-level rewrites apply to the queried segment (the one whose label is ``query_label``).
    """
    queried = list(labels).index(query_label) if query_label in labels else -1
    b = _Builder()
    sep = " " if variant == "no_comma" else ", "
    is_in = ", is in Box " if variant == "add_comma" else " is in Box "
    lead = ""
    if variant == "random_text_start":
        lead = "There are a bunch of boxes containing objects, "
    elif variant == "add_seg_start":
        lead = f"The {EXTRA_OBJECT} is in Box {EXTRA_LABEL}{sep}"
    b.add(lead)
    for k, (obj, label) in enumerate(zip(objects, labels, strict=True)):
        if k > 0:
            b.add(sep)
        if k == queried and variant == "add_box_before_correct_segment":
            extra = "there are three additional boxes, Box PP, Box BB and Box AA, "
            b.add(extra if b.text else _capitalise(extra))
        article = "the " if b.text else "The "
        if k == queried and variant == "altered_box_obj_order":
            b.add("Box ")
            b.add(label, "label")
            b.add(" contains the ")
            b.add(obj, "object")
            continue
        b.add(article)
        b.add(obj, "object")
        if k == queried and variant == "add_tokens_btw_box_and_obj":
            b.add(" is contained in the Box ")
        elif k == queried and variant == "altered_box_obj_association":
            b.add(" is not in Box ")
        else:
            b.add(is_in)
        b.add(label, "label")
    if variant == "random_text_end":
        b.add(f"{sep}these are a bunch of boxes containing objects")
    elif variant == "add_seg_end":
        b.add(f"{sep}the {EXTRA_OBJECT} is in Box {EXTRA_LABEL}")
    b.add(".")
    context_end = len(b.text)
    b.add(" Box ")
    query_span = (len(b.text), len(b.text) + len(query_label))
    b.add(query_label)
    b.add(" contains the")
    last = (len(b.text) - 3, len(b.text))
    return Prompt(b.text, tuple(b.objects), tuple(b.labels), query_span, last, context_end)


def _valid_positional(base: dict[str, Any], src: dict[str, Any], shift: int = 0) -> bool:
    """The shared rule: another context, another query segment, a labelled segment that is not the base's
    answer, and a source answer that is no object of the base context."""
    n = len(base["objects"])
    return (
        src["context"] != base["context"]
        and src["query"] != base["query"]
        and (src["query"] + shift) % n != base["query"]
        and src["answer"] not in base["objects"]
    )


def _no_extra_box(src: dict[str, Any]) -> bool:
    return EXTRA_OBJECT not in src["objects"] and EXTRA_LABEL not in src["labels"]


def _box_label_segment(base: dict[str, Any], src: dict[str, Any]) -> int:
    """The base segment carrying the source's query label, or -1."""
    q_label = src["labels"][src["query"]]
    return base["labels"].index(q_label) if q_label in base["labels"] else -1


def _valid_box_label(base: dict[str, Any], src: dict[str, Any]) -> bool:
    seg = _box_label_segment(base, src)
    return (
        src["context"] != base["context"]
        and seg not in (-1, base["query"], src["query"])
        and src["answer"] not in base["objects"]
    )


def _rule(desideratum: str) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    if desideratum == "box_label_value":
        return _valid_box_label
    if desideratum == "incorrect_segment":
        return lambda b, s: _valid_positional(b, s, shift=1)
    if desideratum in ("add_seg_start", "add_seg_end"):
        return lambda b, s: _valid_positional(b, s) and _no_extra_box(s)
    return _valid_positional


def label_of(desideratum: str, base: dict[str, Any], src: dict[str, Any]) -> tuple[str, int]:
    """The label word and the base segment it comes from (-1: not a base object)."""
    n = len(base["objects"])
    if desideratum == "object_value":
        return src["answer"], -1
    if desideratum == "box_label_value":
        seg = _box_label_segment(base, src)
    elif desideratum == "incorrect_segment":
        seg = (src["query"] + 1) % n
    else:
        seg = src["query"]
    return base["objects"][seg], seg


def _draw(
    rng: random.Random, records: Sequence[dict[str, Any]], ok: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """A uniformly random record satisfying ``ok``: a few random draws, then a shuffled scan of all."""
    for _ in range(QUICK_DRAWS):
        src = records[rng.randrange(len(records))]
        if ok(src):
            return src
    order = list(range(len(records)))
    rng.shuffle(order)
    return next((records[i] for i in order if ok(records[i])), None)


def build_examples(
    desideratum: str, records: Sequence[dict[str, Any]], seed: int | str, split: str = ""
) -> list[dict[str, Any]]:
    """One example per base record, sources drawn from the same records (seeded, reproducible).

    ``seed`` and ``split`` seed a generator of this desideratum alone, so adding a desideratum
    never changes another's pairs.
    """
    if desideratum not in DESIDERATA:
        raise ValueError(f"unknown desideratum {desideratum!r}; known: {list(DESIDERATA)}")
    rng = random.Random(f"{seed}:{split}:{desideratum}")
    valid = _rule(desideratum)
    variant = desideratum if desideratum in REWRITTEN else "plain"
    examples = []
    for base in records:
        src = _draw(rng, records, lambda s, base=base: valid(base, s))
        if src is None:
            raise ValueError(
                f"no record of the split can be the source of base {base['id']} under {desideratum!r}; the split is "
                "too small for this desideratum. Fix: give the DCM splits more contexts (dataset.splits)."
            )
        label, segment = label_of(desideratum, base, src)
        q_label = src["labels"][src["query"]]
        examples.append(
            {
                "id": f"{desideratum}/{base['id']}",
                "desideratum": desideratum,
                "base": base["id"],
                "source": src["id"],
                "source_prompt": variant_prompt(src["objects"], src["labels"], q_label, variant).text,
                "label": label,
                "label_segment": segment,
                "base_query": base["query"],
                "source_query": src["query"],
            }
        )
    return examples


def source_prompt(example: dict[str, Any], records_by_id: dict[str, dict[str, Any]]) -> Prompt:
    """The source prompt of an example, rebuilt from its record and checked against the stored text."""
    src = records_by_id[example["source"]]
    variant = example["desideratum"] if example["desideratum"] in REWRITTEN else "plain"
    prompt = variant_prompt(src["objects"], src["labels"], src["labels"][src["query"]], variant)
    if prompt.text != example["source_prompt"]:
        raise ValueError(
            f"desideratum example {example['id']} does not match its source record; the desiderata files are "
            "corrupted or were edited: delete results/<study>/desiderata and rerun snakemake."
        )
    return prompt


def write_desiderata(
    records: dict[str, Sequence[dict[str, Any]]], desiderata: Sequence[str], seed: int, out_dir: str | Path
) -> dict[str, Any]:
    """Rule desiderata: the pairs of every desideratum and split given (``layout.DESIDERATUM_FILE`` in ``out_dir``),
    and a manifest."""
    from entity_tracking.io import sha256_file, write_json, write_jsonl

    out_dir = Path(out_dir)
    manifest: dict[str, Any] = {"seed": seed, "desiderata": {}}
    for name in desiderata:
        manifest["desiderata"][name] = {}
        for split, recs in records.items():
            path = desiderata_file(out_dir, name, split)
            examples = build_examples(name, recs, seed, split)
            write_jsonl(path, examples)
            answers = {r["id"]: r["answer"] for r in recs}
            same = sum(ex["label"] == answers[ex["base"]] for ex in examples)
            manifest["desiderata"][name][split] = {
                "examples": len(examples),
                "label_is_base_answer": same / len(examples) if examples else None,
                "sha256": sha256_file(path),
            }
    write_json(out_dir / MANIFEST, manifest)
    return manifest
