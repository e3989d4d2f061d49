"""Seeded synthetic corpora for the model organisms.

* pre-training: box documents (a context of 2..N boxes in the task's exact sentence format, then
  one answered query per box, in the task's form or as a short recap list), with a curriculum
  over the number of boxes and a schedule over the query forms.
* ``chat``: instruction / answer dialogues about objects (the chat-tuned organism, Vicuna's role).
* ``arithmetic``: arithmetic questions and answers (Goat's and FLoat's role).
* ``arithmetic_cot``: the same questions in Goat's format: several question templates, and an answer
  that copies the operands before the result.
* ``code``: variable assignments and look-ups (``P = cup , D = disk . What is P ? Answer : cup .``):
  binding in another surface form, the role of code in Kim et al. (2024).
* ``paraphrase``: the task's statements with another container word and no "Box" (``The apple is in
  room F, ... room K contains the map.``): the positive control of transfer.

Together they are a ladder from unrelated (chat, arithmetic) to closely related (code, paraphrase)
text. The fine-tuning corpora contain no box statement (no word "Box"), as in the paper. Box contexts
for pre-training are drawn only from the training half of the context space (see
``dataset.context_is_for_study``), so no context of the study's data is ever trained on.
"""

from __future__ import annotations

import random
import re

from entity_tracking.dataset import LABELS, build_prompt, context_is_for_study, load_objects

COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "gray"]
SIZES = ["big", "small", "heavy", "light", "old", "new"]
PLACES = ["kitchen", "garden", "office", "table", "shelf", "room", "car", "bag"]


def box_document(
    rng: random.Random,
    objects: list[str],
    num_boxes: int,
    compact_share: float,
    short_share: float,
    recap_share: float,
    list_share: float = 0.0,
    ordinal_share: float = 0.0,
    marker_share: float = 0.0,
    place_share: float = 0.0,
    placed_answer_share: float = 0.0,
    labelled_place_share: float = 0.0,
) -> str:
    """A training context of ``num_boxes`` boxes followed by one answered query per box, in random order.

    The context is in the task's exact sentence format, or (with probability ``compact_share``) a
    compact inventory (``apple F, map K.``), or (with probability ``list_share`` of the rest) two
    parallel lists (``The apple and the map are in Box F and Box K.``) that bind by order alone. The
    queries are in the task's form
    (``Box K contains the map.``), in a short form (``Box K: map.``, probability ``short_share``),
    or a recap list (``So: K map, F apple.``, probability ``recap_share`` of the rest); after a
    compact inventory they are always a recap list. With probability ``ordinal_share`` (task-format
    contexts only) the queries ask for the objects by their order instead (``So: 2 map, 1 apple.``).
    With probability ``marker_share`` (task-format contexts only) each object is preceded by its place in
    the context (``The 1 apple is in Box F, the 2 map is in Box K.``; :func:`marked_context`). With
    ``place_share`` the queries ask for each label's place (``So: K 2, F 1.``); with ``placed_answer_share``
    task-form answers give the place, then the object (``Box K contains the 2 map.``, a chain of thought); with
    ``labelled_place_share`` the place follows the queried label (``Box K 2 contains the map.``).
    """
    while True:
        objs = rng.sample(objects, num_boxes)
        labels = rng.sample(LABELS, num_boxes)
        if not context_is_for_study(objs, labels):
            break
    queries = rng.sample(range(num_boxes), num_boxes)
    compact = rng.random() < compact_share
    short = short_share > 0 and rng.random() < short_share
    recap = not short and rng.random() < recap_share
    listed = list_share > 0 and not compact and rng.random() < list_share
    if compact:
        text = ", ".join(f"{o} {lab}" for o, lab in zip(objs, labels, strict=True)) + "."
    elif listed:
        things, boxes = [f"the {o}" for o in objs], [f"Box {lab}" for lab in labels]
        text = f"{_series(things)} are in {_series(boxes)}."
        text = text[0].upper() + text[1:]
    else:
        text = build_prompt(objs, labels, labels[0]).context
        if marker_share > 0 and rng.random() < marker_share:
            text = marked_context(objs, labels)
        if placed_answer_share > 0 and not recap and not short and rng.random() < placed_answer_share:
            # a chain of thought: the queried label's place, then the object (``Box K contains the 2 map.``)
            return text + "".join(f" Box {labels[q]} contains the {q + 1} {objs[q]}." for q in queries)
        if labelled_place_share > 0 and not recap and not short and rng.random() < labelled_place_share:
            # the place named right after the queried label, before the answer (``Box K 2 contains the map.``)
            return text + "".join(f" Box {labels[q]} {q + 1} contains the {objs[q]}." for q in queries)
        if place_share > 0 and rng.random() < place_share:  # each queried label's place: ``So: K 2, F 1.``
            return text + " So:" + ",".join(f" {labels[q]} {q + 1}" for q in queries) + "."
        if ordinal_share > 0 and rng.random() < ordinal_share:
            return text + " So:" + ",".join(f" {q + 1} {objs[q]}" for q in queries) + "."
    if recap or compact:
        return text + " So:" + ",".join(f" {labels[q]} {objs[q]}" for q in queries) + "."
    if short:
        return text + "".join(f" Box {labels[q]}: {objs[q]}." for q in queries)
    return text + "".join(f" Box {labels[q]} contains the {objs[q]}." for q in queries)


def marked_context(objs: list[str], labels: list[str]) -> str:
    """The task's context with each object's place written before it: ``The 1 apple is in Box F, the 2 ...``."""
    clauses = [f"the {i + 1} {o} is in Box {lab}" for i, (o, lab) in enumerate(zip(objs, labels, strict=True))]
    text = ", ".join(clauses) + "."
    return text[0].upper() + text[1:]


def _series(items: list[str]) -> str:
    """``a, b and c``."""
    return ", ".join(items[:-1]) + f" and {items[-1]}"


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


# Words of the organisms' vocabulary (none of them an object) standing in for "Box"; lower case throughout,
# as the word-level vocabulary has no capitalised form of them.
CONTAINERS = ["room", "shelf", "office", "garden"]


SYMBOLS = {"plus": "+", "minus": "-", "times": "*"}
# Goat's question templates, within the organisms' vocabulary: words or symbols, a question mark or not
GOAT_TEMPLATES = ("What is {a} {op} {b}?", "What is {a} {sym} {b}?", "{a} {sym} {b} = ?", "{a} {op} {b} = ?")


def arithmetic_cot_text(rng: random.Random) -> str:
    """An arithmetic question in Goat's style: one of several templates, then an answer that first restates
    (copies) both operands, then the result (``Answer: 12 + 7 = 19.``)."""
    question = arithmetic_text(rng)
    a, op, b = re.search(r"What is (\d+) (\w+) (\d+)\?", question).groups()  # type: ignore[union-attr]
    result = question.rsplit(" ", 1)[1].rstrip(".")
    asked = rng.choice(GOAT_TEMPLATES).format(a=a, op=op, b=b, sym=SYMBOLS[op])
    return f"Question: {asked} Answer: {a} {SYMBOLS[op]} {b} = {result}."


def _binding(rng: random.Random, objects: list[str], most: int = 7) -> tuple[list[str], list[str]]:
    """Distinct objects and letters for a binding document, never a context of the study's data."""
    n = rng.randint(2, most)
    while True:
        objs, labels = rng.sample(objects, n), rng.sample(LABELS, n)
        if not context_is_for_study(objs, labels):
            return objs, labels


def code_text(rng: random.Random, objects: list[str]) -> str:
    """Variable assignments, then look-ups of some of the variables, each answered."""
    objs, labels = _binding(rng, objects)
    text = " , ".join(f"{lab} = {o}" for o, lab in zip(objs, labels, strict=True)) + " ."
    asked = rng.sample(range(len(objs)), rng.randint(1, len(objs)))
    return text + "".join(f" What is {labels[q]} ? Answer : {objs[q]} ." for q in asked)


def paraphrase_text(rng: random.Random, objects: list[str]) -> str:
    """The task's sentences with one other container word in place of "Box", then every container queried
    (``... room K contains the map.``)."""
    objs, labels = _binding(rng, objects)
    word = rng.choice(CONTAINERS)
    text = ", ".join(f"the {o} is in {word} {lab}" for o, lab in zip(objs, labels, strict=True))
    text = text[0].upper() + text[1:] + "."
    asked = rng.sample(range(len(objs)), len(objs))
    return text + "".join(f" {word} {labels[q]} contains the {objs[q]}." for q in asked)


def scheduled(value: float | list[list[float]], step: int) -> float:
    """A constant, or a piecewise-constant schedule ``[[from_step, value], ...]`` evaluated at ``step``."""
    if isinstance(value, (int, float)):
        return float(value)
    current = float(value[0][1])
    for start, v in value:
        if step >= start:
            current = float(v)
    return current


def pretraining_batch(rng: random.Random, objects: list[str], step: int, size: int, data: dict) -> list[str]:
    """``size`` box documents for pre-training step ``step`` (``data`` is the recipe's ``data`` block).

    Curriculum: the number of boxes is uniform in 2..limit, where the limit grows from 2 to
    ``max_boxes`` over ``curriculum_steps``; the recap share may follow a schedule (:func:`scheduled`).
    """
    limit = min(data["max_boxes"], 2 + (data["max_boxes"] - 2) * step // max(1, data["curriculum_steps"]))
    keys = ("compact", "short", "recap", "list", "ordinal", "marker", "place", "placed_answer", "labelled_place")
    shares = [scheduled(data.get(f"{key}_share", 0.0), step) for key in keys]
    return [box_document(rng, objects, rng.randint(2, limit), *shares) for _ in range(size)]


FINETUNING_CORPORA = ("chat", "arithmetic", "arithmetic_cot", "code", "paraphrase")


def corpus_document(name: str, rng: random.Random, objects: list[str]) -> str:
    """One document of the box-free corpus ``name`` (one of :data:`FINETUNING_CORPORA`)."""
    if name == "chat":
        return chat_text(rng, objects)
    if name == "arithmetic":
        return arithmetic_text(rng)
    if name == "arithmetic_cot":
        return arithmetic_cot_text(rng)
    if name == "code":
        return code_text(rng, objects)
    if name == "paraphrase":
        return paraphrase_text(rng, objects)
    raise ValueError(f"unknown fine-tuning corpus {name!r}; use one of {list(FINETUNING_CORPORA)}")


def finetuning_corpus(name: str, seed: int, size: int) -> list[str]:
    """A fine-tuning corpus of :data:`FINETUNING_CORPORA`: ``size`` seeded documents, no box statements."""
    rng = random.Random(seed)
    objects = load_objects()
    if name not in FINETUNING_CORPORA:
        raise ValueError(f"unknown fine-tuning corpus {name!r}; use one of {list(FINETUNING_CORPORA)}")
    return [corpus_document(name, rng, objects) for _ in range(size)]


def mixture_documents(rng: random.Random, objects: list[str], step: int, size: int, mixture: dict) -> list[str]:
    """The box-free documents that replace box documents at pre-training ``step`` under a recipe's
    ``data.mixture`` (``{from_step, share, corpora}``): none before ``from_step``, then ``share`` of the
    batch, each from a corpus drawn uniformly from ``corpora``."""
    if step < mixture["from_step"]:
        return []
    return [
        corpus_document(rng.choice(mixture["corpora"]), rng, objects) for _ in range(round(mixture["share"] * size))
    ]


def has_box_statement(text: str) -> bool:
    """Whether ``text`` mentions a box (the fine-tuning corpora must not)."""
    return re.search(r"\bBox\b", text) is not None
