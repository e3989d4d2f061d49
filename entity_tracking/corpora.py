"""Seeded synthetic corpora for the model organisms.

* ``pretraining``: box documents (a context of 2..N boxes in the task's exact sentence format,
  followed by several answered queries, in the task's form or as a short recap list) mixed with
  non-box text (arithmetic and question/answer sentences).
* ``chat``: instruction / answer dialogues about objects (the chat-tuned organism, Vicuna's role).
* ``arithmetic``: arithmetic questions and answers (Goat's and FLoat's role).

The fine-tuning corpora contain no box statement (no word "Box"), as in the paper. Box contexts
for pre-training are drawn only from the training half of the context space (see
``dataset.context_is_for_study``), so no context of the study's data is ever trained on.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from entity_tracking.dataset import LABELS, build_prompt, context_is_for_study, load_objects

COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "gray"]
SIZES = ["big", "small", "heavy", "light", "old", "new"]
PLACES = ["kitchen", "garden", "office", "table", "shelf", "room", "car", "bag"]


def box_document(rng: random.Random, objects: list[str], num_boxes: int, num_queries: int, style: str) -> str:
    """A training context followed by ``num_queries`` answered queries, in one of three styles.

    ``task``: the task's sentences and queries (``... is in Box K. Box K contains the map.``);
    ``recap``: the task's sentences, then a recap list (``So: K map, F apple.``);
    ``compact``: a compact inventory and a recap list (``apple F, map K. So: K map.``).
    """
    while True:
        objs = rng.sample(objects, num_boxes)
        labels = rng.sample(LABELS, num_boxes)
        if not context_is_for_study(objs, labels):
            break
    queries = rng.sample(range(num_boxes), min(num_queries, num_boxes))
    if style == "compact":
        text = ", ".join(f"{o} {lab}" for o, lab in zip(objs, labels, strict=True)) + "."
    else:
        text = build_prompt(objs, labels, labels[0]).context
    if style == "task":
        return text + "".join(f" Box {labels[q]} contains the {objs[q]}." for q in queries)
    return text + " So:" + ",".join(f" {labels[q]} {objs[q]}" for q in queries) + "."


def _number(rng: random.Random, digits: int) -> int:
    return rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits)


def arithmetic_text(rng: random.Random) -> str:
    """One arithmetic question and its answer (addition, subtraction, multiplication)."""
    a, b = _number(rng, rng.randint(1, 3)), _number(rng, rng.randint(1, 3))
    op = rng.choice(["plus", "minus", "times"])
    if op == "minus" and b > a:
        a, b = b, a
    if op == "times":
        b = _number(rng, 1)
    result = {"plus": a + b, "minus": a - b, "times": a * b}[op]
    return f"Question: What is {a} {op} {b}? Answer: {result}."


def chat_text(rng: random.Random, objects: list[str]) -> str:
    """One instruction / answer exchange about objects and their properties."""
    obj, other = rng.sample(objects, 2)
    kind = rng.randrange(3)
    if kind == 0:
        color = rng.choice(COLORS)
        return f"Question: The {obj} is {color}. What color is the {obj}? Answer: The {obj} is {color}."
    if kind == 1:
        place = rng.choice(PLACES)
        return f"Question: Where is the {obj}? Answer: The {obj} is on the {place}."
    size = rng.choice(SIZES)
    return f"Question: Is the {obj} {size}? Answer: The {obj} is {size} and the {other} is not."


def pretraining_documents(
    seed: int, max_boxes: int, num_queries: int, box_share: float, styles: dict[str, float]
) -> Iterator[tuple[str, int]]:
    """An endless seeded stream of ``(text, num_boxes)``; ``num_boxes`` is 0 for non-box text.

    A share ``box_share`` of documents are box documents with 2..``max_boxes`` boxes, in the
    styles of :func:`box_document` with the given weights; the rest is arithmetic and
    question/answer text.
    """
    rng = random.Random(seed)
    objects = load_objects()
    names, weights = list(styles), list(styles.values())
    while True:
        if rng.random() < box_share:
            boxes = rng.randint(2, max_boxes)
            style = rng.choices(names, weights)[0]
            yield box_document(rng, objects, boxes, num_queries, style), boxes
        elif rng.random() < 0.5:
            yield arithmetic_text(rng), 0
        else:
            yield chat_text(rng, objects), 0


def finetuning_corpus(name: str, seed: int, size: int) -> list[str]:
    """The ``chat`` or ``arithmetic`` fine-tuning corpus: ``size`` seeded documents, no box statements."""
    rng = random.Random(seed)
    objects = load_objects()
    if name == "chat":
        return [chat_text(rng, objects) for _ in range(size)]
    if name == "arithmetic":
        return [arithmetic_text(rng) for _ in range(size)]
    raise ValueError(f"unknown fine-tuning corpus {name!r}; use 'chat' or 'arithmetic'")


def has_box_statement(text: str) -> bool:
    """Whether ``text`` mentions a box (the fine-tuning corpora must not)."""
    return re.search(r"\bBox\b", text) is not None
