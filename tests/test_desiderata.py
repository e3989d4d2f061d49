"""Desiderata: prompt variants, seeded base/source pairs, labels, and their tokenization."""

from __future__ import annotations

import json

import pytest

from entity_tracking.dataset import build_prompt, generate
from entity_tracking.desiderata import (
    ADDITIONAL,
    DESIDERATA,
    EXTRA_LABEL,
    EXTRA_OBJECT,
    build_examples,
    source_prompt,
    variant_prompt,
    write_desiderata,
)
from entity_tracking.tokenization import check_vocabulary, encode_prompts, encode_records

OBJECTS = ["fig", "map", "cup", "key", "ring", "bell", "tea"]
LABELS = list("ABCDEFG")


@pytest.fixture(scope="module")
def records(objects):
    return generate(3, 7, {"dcm_test": 12}, objects)["dcm_test"]


def test_plain_variant_is_the_task_prompt():
    for q in LABELS:
        assert variant_prompt(OBJECTS, LABELS, q, "plain") == build_prompt(OBJECTS, LABELS, q)


@pytest.mark.parametrize("variant", ADDITIONAL)
@pytest.mark.parametrize("query", ["A", "D", "G"])
def test_variant_spans_hold_the_words(variant, query):
    p = variant_prompt(OBJECTS, LABELS, query, variant)
    assert [p.text[a:b] for a, b in p.objects] == OBJECTS
    assert [p.text[a:b] for a, b in p.labels] == LABELS
    assert p.text[slice(*p.query_label)] == query and p.text.endswith(f". Box {query} contains the")
    assert p.text[slice(*p.last)] == "the" and p.text[p.context_end - 1] == "."
    assert p.text[0].isupper() and ", ." not in p.text and "  " not in p.text


def test_variant_texts():
    def text(variant: str, q: str = "D") -> str:
        return variant_prompt(OBJECTS[:3], LABELS[:3], q, variant).text

    assert text("random_text_start") == (
        "There are a bunch of boxes containing objects, the fig is in Box A, the map is in Box B, "
        "the cup is in Box C. Box D contains the"
    )
    assert text("add_seg_end", "B") == (
        "The fig is in Box A, the map is in Box B, the cup is in Box C, the apple is in Box O. Box B contains the"
    )
    assert text("add_tokens_btw_box_and_obj", "B") == (
        "The fig is in Box A, the map is contained in the Box B, the cup is in Box C. Box B contains the"
    )
    assert text("add_box_before_correct_segment", "A").startswith(
        "There are three additional boxes, Box PP, Box BB and Box AA, the fig is in Box A, the map"
    )
    # the original left "…, Box K contains the map, . Box K contains the" when the last box was queried
    assert text("altered_box_obj_order", "C") == (
        "The fig is in Box A, the map is in Box B, Box C contains the cup. Box C contains the"
    )
    assert text("altered_box_obj_association", "A").startswith("The fig is not in Box A, the map is in Box B")
    assert text("no_comma") == "The fig is in Box A the map is in Box B the cup is in Box C. Box D contains the"
    assert text("add_comma") == "The fig, is in Box A, the map, is in Box B, the cup, is in Box C. Box D contains the"


@pytest.mark.parametrize("desideratum", DESIDERATA)
def test_examples_follow_the_sampling_rules(records, desideratum):
    by_id = {r["id"]: r for r in records}
    examples = build_examples(desideratum, records, seed=7, split="dcm_test")
    assert [ex["base"] for ex in examples] == [r["id"] for r in records]
    assert examples == build_examples(desideratum, records, seed=7, split="dcm_test")  # seeded
    assert examples != build_examples(desideratum, records, seed=8, split="dcm_test")
    for ex in examples:
        base, src = by_id[ex["base"]], by_id[ex["source"]]
        assert src["context"] != base["context"]
        assert ex["label"] != base["answer"]  # a no-op never scores by construction
        assert src["answer"] not in base["objects"]  # "object here" and "source's answer" differ
        assert source_prompt(ex, by_id).text == ex["source_prompt"]
        sq = src["query"]
        if desideratum == "object_value":
            assert ex["label"] == src["answer"] and sq != base["query"]
        elif desideratum == "box_label_value":
            seg = base["labels"].index(src["labels"][sq])
            assert ex["label"] == base["objects"][seg] and seg not in (base["query"], sq)
        elif desideratum == "incorrect_segment":
            assert ex["label"] == base["objects"][(sq + 1) % 7] and sq != base["query"]
        else:
            assert ex["label"] == base["objects"][sq] and sq != base["query"]
        if desideratum in ("add_seg_start", "add_seg_end"):
            assert EXTRA_OBJECT not in src["objects"] and EXTRA_LABEL not in src["labels"]


@pytest.mark.parametrize("desideratum", DESIDERATA)
@pytest.mark.parametrize("tok", ["bos_tokenizer", "nobos_tokenizer"])
def test_labels_are_single_tokens_and_positions_are_right(request, objects, records, desideratum, tok):
    tokenizer = request.getfixturevalue(tok)
    vocab = check_vocabulary(tokenizer, objects)
    by_id = {r["id"]: r for r in records}
    examples = build_examples(desideratum, records, seed=1, split="dcm_test")
    source = encode_prompts(tokenizer, [source_prompt(ex, by_id) for ex in examples], vocab)
    base = encode_records(tokenizer, records, vocab)
    for i, ex in enumerate(examples):
        src = by_id[ex["source"]]
        label_id = vocab.object_ids[ex["label"]]
        assert tokenizer.encode(" " + ex["label"], add_special_tokens=False) == [label_id]
        ids = source.input_ids[i]
        q_label = vocab.label_ids[src["labels"][src["query"]]]
        assert ids[source.query_label[i]] == q_label and ids[source.prev_query_label[i]] == q_label
        assert source.prev_query_label[i] == source.labels[i, src["query"]]  # the queried box's own label
        assert ids[source.correct_object[i]] == vocab.object_ids[src["answer"]]
        assert source.last[i] == source.attention_mask[i].sum() - 1
        assert tokenizer.convert_ids_to_tokens(int(ids[source.last[i]])).lstrip("\u2581\u0120") == "the"
        if desideratum != "object_value":  # the label sits in the base context where the data says
            seg = ex["label_segment"]
            assert base.input_ids[i, base.objects[i, seg]] == label_id


def test_write_desiderata_files_and_manifest(records, tmp_path):
    manifest = write_desiderata({"dcm_test": records}, ["positional", "no_comma"], 5, tmp_path)
    for name in ("positional", "no_comma"):
        lines = (tmp_path / name / "dcm_test.jsonl").read_text().splitlines()
        assert len(lines) == len(records) == manifest["desiderata"][name]["dcm_test"]["examples"]
        assert json.loads(lines[0])["desideratum"] == name
        assert manifest["desiderata"][name]["dcm_test"]["label_is_base_answer"] == 0.0
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    with pytest.raises(ValueError, match="unknown desideratum"):
        build_examples("colour", records, 1)
    with pytest.raises(ValueError, match="too small"):
        build_examples("positional", records[:7], 1)  # one context: no other context to draw from
