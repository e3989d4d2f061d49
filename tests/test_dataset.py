import re

import pytest

from entity_tracking.dataset import LABELS, SPLITS, build_prompt, generate, load_objects, write_dataset
from entity_tracking.io import read_json, read_jsonl

PROMPT_RE = re.compile(r"^The (\w+) is in Box ([A-Z])(?:, the (\w+) is in Box ([A-Z])){6}\. Box ([A-Z]) contains the$")


def test_objects_file_is_the_papers_85_objects(objects):
    assert len(objects) == 85
    assert objects[:4] == ["book", "car", "paper", "letter"]
    assert objects[-3:] == ["brick", "bell", "magnet"]


def test_objects_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "objects.csv"
    bad.write_text("object_name\napple\napple\n")
    with pytest.raises(ValueError, match="duplicate objects \\['apple'\\]"):
        load_objects(bad)
    bad.write_text("name\napple\n")
    with pytest.raises(ValueError, match="object_name"):
        load_objects(bad)


def test_prompt_has_the_papers_exact_format():
    objs = ["document", "apple", "cross", "map"]
    labs = ["X", "C", "K", "D"]
    prompt = build_prompt(objs, labs, "C")
    assert prompt.text == (
        "The document is in Box X, the apple is in Box C, the cross is in Box K, the map is in Box D. "
        "Box C contains the"
    )
    assert [prompt.text[a:b] for a, b in prompt.objects] == objs
    assert [prompt.text[a:b] for a, b in prompt.labels] == labs
    assert prompt.text[slice(*prompt.query_label)] == "C"
    assert prompt.text[slice(*prompt.last)] == "the"
    assert (
        prompt.context == "The document is in Box X, the apple is in Box C, the cross is in Box K, the map is in Box D."
    )


def test_records_follow_the_task(small_data, objects):
    for split, records in small_data.items():
        assert len(records) % 7 == 0
        for i, rec in enumerate(records):
            assert rec["split"] == split
            assert rec["context"] == i // 7 and rec["query"] == i % 7  # one record per box, in context order
            assert PROMPT_RE.match(rec["prompt"])
            assert len(set(rec["objects"])) == 7 and set(rec["objects"]) <= set(objects)
            assert len(set(rec["labels"])) == 7 and set(rec["labels"]) <= set(LABELS)
            assert rec["answer"] == rec["objects"][rec["query"]]
            assert rec["prompt"].endswith(f"Box {rec['labels'][rec['query']]} contains the")
            assert rec["id"] == f"{split}/{rec['context']:05d}/{rec['query']}"


def test_splits_are_disjoint_by_context(small_data):
    seen: dict[tuple, str] = {}
    for split, records in small_data.items():
        for rec in records[::7]:
            key = (tuple(rec["objects"]), tuple(rec["labels"]))
            assert key not in seen, f"context shared by {seen.get(key)} and {split}"
            seen[key] = split
    assert len(seen) == 6 + 3 + 10 + 4 + 2 + 2


def test_counterfactual_partners_are_stored_and_valid(small_data):
    discovery = small_data["discovery"]
    contexts = {r["context"]: r for r in discovery[::7]}
    for rec in discovery:
        cf = rec["counterfactual"]
        assert cf["context"] != rec["context"]
        partner = contexts[cf["context"]]
        assert (cf["objects"], cf["labels"]) == (partner["objects"], partner["labels"])
        assert cf["query_label"] in LABELS
        assert cf["prompt"] == build_prompt(cf["objects"], cf["labels"], cf["query_label"]).text
        assert 0 <= cf["random_segment"] < 7
    letters = {r["counterfactual"]["query_label"] for r in discovery}
    assert len(letters) > 10  # drawn at random, not copied from the clean query
    for split in SPLITS[1:]:
        assert all("counterfactual" not in r for r in small_data[split])


def test_generation_is_seeded_and_byte_identical(tmp_path):
    contexts = {"discovery": 4, "ablation": 2, "eval": 3}
    m1 = write_dataset(tmp_path / "a", 3, 7, contexts)
    m2 = write_dataset(tmp_path / "b", 3, 7, contexts)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (tmp_path / "b" / f"{split}.jsonl").read_bytes()
    assert m1 == m2 == read_json(tmp_path / "a" / "manifest.json")
    assert m1["splits"]["eval"]["records"] == 21 and m1["splits"]["dcm_train"]["records"] == 0
    m3 = write_dataset(tmp_path / "c", 4, 7, contexts)
    assert m3["splits"]["eval"]["sha256"] != m1["splits"]["eval"]["sha256"]
    assert read_jsonl(tmp_path / "a" / "eval.jsonl")[0]["split"] == "eval"


def test_adding_a_later_split_leaves_earlier_splits_unchanged(objects):
    a = generate(1, 7, {"discovery": 3, "eval": 2}, objects)
    b = generate(1, 7, {"discovery": 3, "eval": 2, "dcm_test": 5}, objects)
    assert a["discovery"] == b["discovery"] and a["eval"] == b["eval"]


def test_generation_rejects_bad_settings(objects):
    with pytest.raises(ValueError, match="unknown split"):
        generate(1, 7, {"train": 3}, objects)
    with pytest.raises(ValueError, match="num_boxes"):
        generate(1, 27, {"eval": 3}, objects)
    with pytest.raises(ValueError, match="at least 2 contexts"):
        generate(1, 7, {"discovery": 1}, objects)
