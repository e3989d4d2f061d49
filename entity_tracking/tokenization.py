"""Per-model tokenization: the single-token check and every position the methods need.

Positions are read off each prompt's own tokenization (character offsets of a fast tokenizer),
never from constants, so tokenizers with and without a BOS token, or with different word
splits, all work. Every located token is checked to be exactly the word (plus its leading space)
and, for objects and labels, to be the same token id as the scored answer token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from entity_tracking.dataset import LABELS, Prompt, Span, build_prompt


class TokenizationError(ValueError):
    """The tokenizer does not fit the task (multi-token words, no offsets, trailing special tokens)."""


def word_token_id(tokenizer: PreTrainedTokenizerBase, word: str, prefix: str) -> tuple[int | None, list[str]]:
    """The single token of ``" " + word`` as it follows ``prefix``, or ``None`` and the pieces it splits into."""
    head = tokenizer.encode(prefix, add_special_tokens=False)
    full = tokenizer.encode(f"{prefix} {word}", add_special_tokens=False)
    if full[: len(head)] != head:
        return None, tokenizer.convert_ids_to_tokens(full)
    tail = full[len(head) :]
    if len(tail) != 1 or tail[0] == tokenizer.unk_token_id:
        return None, tokenizer.convert_ids_to_tokens(tail)
    return tail[0], []


@dataclass(frozen=True)
class Vocabulary:
    """Token ids of every object and label, each a single token with its leading space."""

    object_ids: dict[str, int]
    label_ids: dict[str, int]


def check_vocabulary(
    tokenizer: PreTrainedTokenizerBase, objects: Sequence[str], model_name: str = "model"
) -> Vocabulary:
    """Require every object and label A-Z to be one token with its leading space; list offenders if not."""
    if not getattr(tokenizer, "is_fast", False):
        raise TokenizationError(
            f"the tokenizer of {model_name!r} is a slow tokenizer; positions are computed from character "
            "offsets, which only fast tokenizers provide. Fix: load the tokenizer with use_fast=True "
            "(every tokenizer on the Hugging Face hub has a fast version)."
        )
    object_ids: dict[str, int] = {}
    label_ids: dict[str, int] = {}
    offenders: list[str] = []
    for words, prefix, out in ((objects, "the", object_ids), (LABELS, "Box", label_ids)):
        for word in words:
            tid, pieces = word_token_id(tokenizer, word, prefix)
            if tid is None:
                offenders.append(f"{word!r} -> {pieces}")
            else:
                out[word] = tid
    if offenders:
        raise TokenizationError(
            f"the tokenizer of {model_name!r} does not encode these words as one token with a leading space: "
            + "; ".join(offenders)
            + ". Fix: remove such objects from the objects file (config dataset.objects_file), or use a model "
            "whose tokenizer keeps every object and every letter A-Z whole."
        )
    clash = len(set(object_ids.values())) != len(object_ids) or len(set(label_ids.values())) != len(label_ids)
    if clash:
        raise TokenizationError(f"the tokenizer of {model_name!r} maps two different words to one token id")
    return Vocabulary(object_ids, label_ids)


@dataclass
class Encoded:
    """A batch-ready tokenization of prompts with every position the methods use.

    ``input_ids`` and ``attention_mask`` are right-padded, so real tokens keep their positions.
    Position tensors hold token indices; ``-1`` marks a position that does not exist (the
    previous occurrence of a counterfactual query letter absent from its context).
    """

    input_ids: torch.Tensor  # [N, T]
    attention_mask: torch.Tensor  # [N, T]
    last: torch.Tensor  # [N] the final prompt token ("the")
    query_label: torch.Tensor  # [N] the query box label
    prev_query_label: torch.Tensor  # [N] the query label's occurrence in the context, or -1
    correct_object: torch.Tensor  # [N] the object in the queried box, or -1
    objects: torch.Tensor  # [N, num_boxes] (-1 past a prompt's own number of boxes)
    labels: torch.Tensor  # [N, num_boxes]
    answer_ids: torch.Tensor  # [N] token id of the correct answer, or -1

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, index: slice | torch.Tensor) -> Encoded:
        """Rows ``index`` of every field (a batch), trimmed of all-padding columns."""
        fields = {name: getattr(self, name)[index] for name in self.__dataclass_fields__}
        width = int(fields["attention_mask"].sum(1).max()) if len(fields["attention_mask"]) else 0
        fields["input_ids"] = fields["input_ids"][:, :width]
        fields["attention_mask"] = fields["attention_mask"][:, :width]
        return Encoded(**fields)


def _token_at(offsets: Sequence[tuple[int, int]], span: Span, text: str, what: str) -> int:
    """Index of the one token that covers ``span`` (the word, optionally with its leading space)."""
    start, end = span
    hits = [i for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
    if len(hits) != 1:
        raise TokenizationError(f"{what} {text[start:end]!r} spans {len(hits)} tokens in prompt {text!r}")
    a, b = offsets[hits[0]]
    if a < start - 1 or b > end or (a == start - 1 and text[a] != " "):
        raise TokenizationError(f"{what} {text[start:end]!r} is merged with its neighbours in prompt {text!r}")
    return hits[0]


def _locate(prompt: Prompt, ids: list[int], offsets: list[tuple[int, int]], vocab: Vocabulary) -> dict[str, Any]:
    text = prompt.text
    objects = [_token_at(offsets, s, text, "object") for s in prompt.objects]
    labels = [_token_at(offsets, s, text, "label") for s in prompt.labels]
    query = _token_at(offsets, prompt.query_label, text, "query label")
    last = _token_at(offsets, prompt.last, text, "final word")
    if last != len(ids) - 1:
        extra = ids[last + 1 :]
        raise TokenizationError(
            f"the tokenizer appends {len(extra)} token(s) {extra} after the prompt; the model must predict "
            "right after the final word. Fix: disable the tokenizer's end-of-sequence post-processing."
        )
    checks = [(s, p, vocab.object_ids) for s, p in zip(prompt.objects, objects, strict=True)]
    checks += [
        (s, p, vocab.label_ids) for s, p in zip((*prompt.labels, prompt.query_label), [*labels, query], strict=True)
    ]
    for span, pos, table in checks:
        word = text[span[0] : span[1]]
        if ids[pos] != table.get(word):
            raise TokenizationError(
                f"{word!r} is token {ids[pos]} in the prompt but {table.get(word)} standalone; the scored token "
                "would differ from the one in context"
            )
    query_word = text[slice(*prompt.query_label)]
    label_words = [text[a:b] for a, b in prompt.labels]
    seg = label_words.index(query_word) if query_word in label_words else -1
    return {
        "last": last,
        "query_label": query,
        "prev_query_label": labels[seg] if seg >= 0 else -1,
        "correct_object": objects[seg] if seg >= 0 else -1,
        "objects": objects,
        "labels": labels,
    }


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    vocab: Vocabulary,
    answers: Sequence[str | None] | None = None,
) -> Encoded:
    """Tokenize prompts and locate every position; ``answers`` (object words) give ``answer_ids``."""
    batch = tokenizer([p.text for p in prompts], return_offsets_mapping=True)
    rows = [
        _locate(p, ids, [tuple(o) for o in offs], vocab)
        for p, ids, offs in zip(prompts, batch["input_ids"], batch["offset_mapping"], strict=True)
    ]
    width = max(len(ids) for ids in batch["input_ids"])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, ids in enumerate(batch["input_ids"]):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
    boxes = max(len(row["objects"]) for row in rows)
    for row in rows:  # prompts with fewer boxes are padded with -1
        for key in ("objects", "labels"):
            row[key] = row[key] + [-1] * (boxes - len(row[key]))
    answers = answers if answers is not None else [None] * len(prompts)
    return Encoded(
        input_ids=input_ids,
        attention_mask=attention_mask,
        answer_ids=torch.tensor([vocab.object_ids[a] if a else -1 for a in answers], dtype=torch.long),
        **{
            key: torch.tensor([row[key] for row in rows], dtype=torch.long)
            for key in ("last", "query_label", "prev_query_label", "correct_object", "objects", "labels")
        },
    )


def record_prompt(record: dict[str, Any]) -> Prompt:
    """The prompt of a dataset record, rebuilt from its fields and checked against its stored text."""
    prompt = build_prompt(record["objects"], record["labels"], record["labels"][record["query"]])
    if prompt.text != record["prompt"]:
        raise ValueError(
            f"record {record.get('id')} is inconsistent: its prompt does not match its objects and labels. "
            "The dataset file is corrupted or was edited: delete results/<study>/data and rerun snakemake."
        )
    return prompt


def counterfactual_prompt(record: dict[str, Any]) -> Prompt:
    """The stored counterfactual partner of a path-patching record."""
    cf = record["counterfactual"]
    prompt = build_prompt(cf["objects"], cf["labels"], cf["query_label"])
    if prompt.text != cf["prompt"]:
        raise ValueError(f"the counterfactual of record {record.get('id')} is inconsistent; regenerate the dataset")
    return prompt


def encode_records(tokenizer: PreTrainedTokenizerBase, records: Sequence[dict[str, Any]], vocab: Vocabulary) -> Encoded:
    """Encode the clean prompts of dataset records, with their answers."""
    return encode_prompts(tokenizer, [record_prompt(r) for r in records], vocab, [r["answer"] for r in records])
