"""The 7-box entity-tracking task: seeded generation, context-level splits, counterfactual partners.

A context places ``num_boxes`` distinct objects in boxes with distinct letter labels::

    The apple is in Box F, the map is in Box K, ..., the ring is in Box C.

Each context yields one record per box, querying that box in context order::

    prompt = "<context> Box K contains the"      answer = "map"

Record fields (one JSON object per line of ``<split>.jsonl``):

``id``            ``"<split>/<context:05d>/<query>"``
``split``         split name
``context``       context index within the split
``query``         segment index (0-based) of the queried box
``objects``       the objects, in context order
``labels``        the box labels, in context order
``prompt``        the prompt, ending in ``" contains the"`` (no trailing space)
``answer``        the queried object; the scored token is this word with a leading space
``counterfactual`` (path-patching split only) the corrupt partner, drawn once here:
    ``context`` (another context of the same split), its ``objects`` and ``labels``, ``query_label``
    (a uniformly random letter A-Z, which may or may not occur in that context), ``prompt`` (that
    context queried with that letter) and ``random_segment`` (the segment whose label position is
    the corrupt source for the structure-reader stage).
"""

from __future__ import annotations

import csv
import hashlib
import random
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from entity_tracking.config import repo_path
from entity_tracking.io import sha256_file, write_json, write_jsonl
from entity_tracking.layout import MANIFEST, data_file

LABELS: tuple[str, ...] = tuple(string.ascii_uppercase)
SPLITS: tuple[str, ...] = ("discovery", "ablation", "eval", "dcm_train", "dcm_val", "dcm_test")
COUNTERFACTUAL_SPLITS: frozenset[str] = frozenset({"discovery"})


def default_objects_file() -> Path:
    return Path(str(resources.files("entity_tracking") / "data" / "objects.csv"))


def load_objects(path: str | Path | None = None) -> list[str]:
    """Read the object vocabulary: a CSV whose first column, headed ``object_name``, holds one object a row."""
    path = Path(path) if path else default_objects_file()
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][0] != "object_name":
        raise ValueError(f"{path}: the first column must be headed 'object_name'")
    objects = [row[0].strip() for row in rows[1:] if row and row[0].strip()]
    dupes = sorted({o for o in objects if objects.count(o) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate objects {dupes}; each object must appear once")
    bad = [o for o in objects if not o.isalpha()]
    if bad:
        raise ValueError(f"{path}: objects must be single words of letters, got {bad}")
    return objects


Span = tuple[int, int]


@dataclass(frozen=True)
class Prompt:
    """A prompt's text and the character spans of the words the methods locate."""

    text: str
    objects: tuple[Span, ...]
    labels: tuple[Span, ...]
    query_label: Span
    last: Span
    context_end: int  # the context is text[:context_end], ending in its period

    @property
    def context(self) -> str:
        return self.text[: self.context_end]


def build_prompt(objects: list[str], labels: list[str], query_label: str) -> Prompt:
    """``The o1 is in Box l1, the o2 is in Box l2, ..., the oN is in Box lN. Box lq contains the``."""
    text = ""
    object_spans: list[Span] = []
    label_spans: list[Span] = []
    for k, (obj, label) in enumerate(zip(objects, labels, strict=True)):
        text += "The " if k == 0 else ", the "
        object_spans.append((len(text), len(text) + len(obj)))
        text += obj + " is in Box "
        label_spans.append((len(text), len(text) + len(label)))
        text += label
    text += "."
    context_end = len(text)
    text += " Box "
    query_span = (len(text), len(text) + len(query_label))
    text += query_label + " contains the"
    last = (len(text) - 3, len(text))
    return Prompt(text, tuple(object_spans), tuple(label_spans), query_span, last, context_end)


def prompt_text(objects: list[str], labels: list[str], query_label: str) -> str:
    return build_prompt(objects, labels, query_label).text


def context_is_for_study(objects: list[str], labels: list[str]) -> bool:
    """Whether a context belongs to the study's half of the context space (a fixed hash decides).

    The study's data uses only these contexts and training corpora only the others, so no context
    of any split, whatever the seed, can appear in a model organism's training data.
    """
    key = ",".join(objects) + "|" + ",".join(labels)
    return hashlib.sha256(key.encode()).digest()[0] % 2 == 0


@dataclass(frozen=True)
class Context:
    objects: list[str]
    labels: list[str]


def _draw_contexts(
    rng: random.Random, objects: list[str], num_boxes: int, count: int, seen: set[tuple[Any, ...]]
) -> list[Context]:
    contexts: list[Context] = []
    while len(contexts) < count:
        ctx = Context(rng.sample(objects, num_boxes), rng.sample(LABELS, num_boxes))
        key = (tuple(ctx.objects), tuple(ctx.labels))
        if key in seen or not context_is_for_study(ctx.objects, ctx.labels):
            continue  # splits stay disjoint even if a context repeats; training contexts are never used
        seen.add(key)
        contexts.append(ctx)
    return contexts


def _records(split: str, contexts: list[Context], rng: random.Random) -> list[dict[str, Any]]:
    records = []
    for c, ctx in enumerate(contexts):
        for q, label in enumerate(ctx.labels):
            record: dict[str, Any] = {
                "id": f"{split}/{c:05d}/{q}",
                "split": split,
                "context": c,
                "query": q,
                "objects": ctx.objects,
                "labels": ctx.labels,
                "prompt": prompt_text(ctx.objects, ctx.labels, label),
                "answer": ctx.objects[q],
            }
            if split in COUNTERFACTUAL_SPLITS:
                if len(contexts) < 2:
                    raise ValueError(f"split {split!r} needs at least 2 contexts to draw counterfactual partners")
                other = rng.randrange(len(contexts) - 1)
                other += other >= c  # a different context, uniformly
                letter = rng.choice(LABELS)
                partner = contexts[other]
                record["counterfactual"] = {
                    "context": other,
                    "objects": partner.objects,
                    "labels": partner.labels,
                    "query_label": letter,
                    "prompt": prompt_text(partner.objects, partner.labels, letter),
                    "random_segment": rng.randrange(len(partner.labels)),
                }
            records.append(record)
    return records


def generate(
    seed: int, num_boxes: int, split_contexts: dict[str, int], objects: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Generate every split from one seed. Splits are drawn in the fixed order of ``SPLITS``."""
    unknown = sorted(set(split_contexts) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; valid splits are {list(SPLITS)}")
    if not 2 <= num_boxes <= min(len(LABELS), len(objects)):
        raise ValueError(f"num_boxes={num_boxes} must be between 2 and {min(len(LABELS), len(objects))}")
    rng = random.Random(seed)
    seen: set[tuple[Any, ...]] = set()
    out: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        count = split_contexts.get(split, 0)
        contexts = _draw_contexts(rng, objects, num_boxes, count, seen)
        out[split] = _records(split, contexts, rng)
    return out


def write_dataset(
    out_dir: str | Path, seed: int, num_boxes: int, contexts: dict[str, int], objects_file: str | None = None
) -> dict[str, Any]:
    """Generate the dataset (config ``dataset``: ``contexts`` per split, ``num_boxes`` a context, the objects of
    ``objects_file`` or the shipped list) into ``out_dir``.

    Writes ``<split>.jsonl`` for every split and ``manifest.json`` with counts and sha256 sums.
    """
    out_dir = Path(out_dir)
    objects_path = repo_path(objects_file) if objects_file else default_objects_file()
    objects = load_objects(objects_path)
    splits = generate(seed, num_boxes, contexts, objects)
    manifest: dict[str, Any] = {
        "seed": seed,
        "num_boxes": num_boxes,
        "num_objects": len(objects),
        "objects_sha256": sha256_file(objects_path),
        "splits": {},
    }
    for split, records in splits.items():
        path = data_file(out_dir, split)
        write_jsonl(path, records)
        manifest["splits"][split] = {
            "file": path.name,
            "contexts": contexts.get(split, 0),
            "records": len(records),
            "sha256": sha256_file(path),
        }
    write_json(out_dir / MANIFEST, manifest)
    return manifest
