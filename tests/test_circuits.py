"""Circuits (file format, selection, random circuits, overlap), minimality and mean ablation."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
import torch

from entity_tracking.ablation import (
    Ablator,
    ablated_logits,
    ablation_edits,
    encode_mean_prompts,
    mean_reference_prompts,
    mean_z,
)
from entity_tracking.circuits import (
    GROUPS,
    POSITIONS,
    CircuitFileError,
    circuit_nodes,
    full_model_keep,
    keep_sets,
    load_circuit,
    overlap,
    random_circuit,
    save_circuit,
    top_heads,
)
from entity_tracking.config import build_config
from entity_tracking.dataset import generate, load_objects
from entity_tracking.interventions import ModelParts, capture, chain, intervene
from entity_tracking.minimality import minimality, significance
from entity_tracking.model_specs import model_source
from entity_tracking.models import load_source
from entity_tracking.tokenization import check_vocabulary, encode_records
from entity_tracking.toy import build_model

# The circuit of Llama-7B from the original repository (results/circuits/llama_circuit.json), group by group.
ORIGINAL_LLAMA = {
    "value_fetcher": [
        [15, 13], [21, 3], [24, 5], [20, 14], [18, 8], [29, 7], [18, 3], [15, 18], [17, 28], [21, 4],
        [21, 25], [23, 15], [18, 28], [23, 19], [23, 20], [19, 30], [23, 5], [17, 27], [15, 5], [21, 0],
        [23, 17], [15, 2], [17, 3], [19, 20], [19, 11], [19, 8], [15, 6], [20, 29], [16, 23], [24, 0],
        [25, 14], [14, 13], [21, 26], [24, 8], [18, 6], [19, 26], [23, 16], [16, 27], [18, 20], [18, 25],
    ],
    "pos_transmitter": [[14, 27], [11, 23], [12, 23], [19, 12], [13, 0], [16, 2], [13, 14]],
    "pos_detector": [
        [10, 3], [13, 14], [9, 2], [9, 7], [11, 23], [9, 10], [1, 9], [7, 17], [13, 0], [6, 10],
        [4, 4], [7, 26], [9, 21], [8, 1], [12, 0], [8, 22], [10, 4], [11, 7], [7, 9], [10, 15],
    ],
    "struct_reader": [[8, 21], [12, 23], [11, 9], [8, 12], [11, 23]],
}  # fmt: skip


@pytest.fixture
def original_file(tmp_path):
    path = tmp_path / "llama_circuit.json"
    path.write_text(json.dumps(ORIGINAL_LLAMA, indent=4))  # as the original repository wrote it
    return path


# ------------------------------------------------------------------------------------------ file format


def test_original_circuit_file_loads_as_is(original_file):
    text = original_file.read_text()
    assert text.startswith('{\n    "value_fetcher": [\n        [\n            15,\n            13\n        ],')
    circuit = load_circuit(original_file, layers=32, heads=32)
    assert list(circuit) == list(GROUPS)
    assert [len(circuit[g]) for g in GROUPS] == [40, 7, 20, 5]
    assert circuit["value_fetcher"][0] == (15, 13) and circuit["value_fetcher"][-1] == (18, 25)
    assert circuit["pos_transmitter"][3] == (19, 12)
    assert circuit["pos_detector"][6] == (1, 9)
    assert circuit["struct_reader"] == [(8, 21), (12, 23), (11, 9), (8, 12), (11, 23)]
    assert all(isinstance(h, tuple) for g in GROUPS for h in circuit[g])
    assert load_circuit(original_file) == circuit  # no size check without a model size


def test_circuit_file_errors(tmp_path, original_file):
    def write(obj: Any):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(obj, indent=4))
        return path

    missing = {g: v for g, v in ORIGINAL_LLAMA.items() if g != "struct_reader"}
    with pytest.raises(CircuitFileError, match="exactly the groups"):
        load_circuit(write(missing))
    extra = {**ORIGINAL_LLAMA, "mover": [[1, 1]]}
    with pytest.raises(CircuitFileError, match="exactly the groups"):
        load_circuit(write(extra))
    dup = {**ORIGINAL_LLAMA, "pos_transmitter": [*ORIGINAL_LLAMA["pos_transmitter"], [13, 0]]}
    with pytest.raises(CircuitFileError, match="'pos_transmitter' lists a head twice"):
        load_circuit(write(dup))
    with pytest.raises(CircuitFileError, match=r"\[\(15, 18\), \(17, 28\).*32 layers of 16 heads"):
        load_circuit(original_file, layers=32, heads=16)
    with pytest.raises(CircuitFileError, match=r"\[\(29, 7\)\] of group 'value_fetcher'.*28 layers"):
        load_circuit(original_file, layers=28, heads=32)  # (29, 7) is in layer 29
    for bad in ([[1, 2, 3]], [[1, "2"]], [[1, -1]], [[1.0, 2]], "heads", {"a": 1}):
        with pytest.raises(CircuitFileError, match="not a list of \\[layer, head\\] pairs"):
            load_circuit(write({**ORIGINAL_LLAMA, "struct_reader": bad}))
    with pytest.raises(CircuitFileError, match="exactly the groups"):
        load_circuit(write([[1, 2]]))


def test_circuit_file_rejects_booleans(tmp_path):
    path = tmp_path / "bool.json"
    path.write_text(json.dumps({**ORIGINAL_LLAMA, "struct_reader": [[True, 1]]}, indent=4))
    with pytest.raises(CircuitFileError, match="not a list of \\[layer, head\\] pairs"):
        load_circuit(path)


def test_save_load_round_trip(tmp_path, original_file):
    circuit = load_circuit(original_file)
    save_circuit(tmp_path / "out" / "c.json", circuit)
    assert load_circuit(tmp_path / "out" / "c.json", 32, 32) == circuit
    assert json.loads((tmp_path / "out" / "c.json").read_text()) == ORIGINAL_LLAMA
    small = {"value_fetcher": [(2, 1)], "pos_transmitter": [], "pos_detector": [(0, 3), (1, 0)], "struct_reader": []}
    save_circuit(tmp_path / "s.json", small)
    assert load_circuit(tmp_path / "s.json", 3, 4) == small


# --------------------------------------------------------------------------------------- selection


def test_top_heads_most_negative_with_ties_by_layer_and_head():
    score = torch.tensor([[0.0, -1.0, -2.0], [-2.0, -1.0, 5.0]])
    assert top_heads(score, 1) == [(0, 2)]
    assert top_heads(score, 3) == [(0, 2), (1, 0), (0, 1)]
    assert top_heads(score, 4) == [(0, 2), (1, 0), (0, 1), (1, 1)]
    assert top_heads(score, 6)[-1] == (1, 2)
    assert top_heads(torch.zeros(2, 2), 3) == [(0, 0), (0, 1), (1, 0)]


def test_random_circuit_sizes_distinct_and_seeded():
    sizes = {"value_fetcher": 40, "pos_transmitter": 7, "pos_detector": 20, "struct_reader": 5}
    for seed in range(5):
        c = random_circuit(random.Random(seed), sizes, 32, 32)
        assert {g: len(c[g]) for g in GROUPS} == sizes
        last = c["value_fetcher"] + c["pos_transmitter"]  # both act at the last token
        assert len(set(last)) == 47
        assert len(set(c["pos_detector"])) == 20 and len(set(c["struct_reader"])) == 5
        assert all(0 <= layer < 32 and 0 <= head < 32 for g in GROUPS for layer, head in c[g])
        assert random_circuit(random.Random(seed), sizes, 32, 32) == c
    assert random_circuit(random.Random(0), sizes, 32, 32) != random_circuit(random.Random(1), sizes, 32, 32)
    # a full model's worth of heads at one position: every head exactly once
    small = {"value_fetcher": 10, "pos_transmitter": 2, "pos_detector": 12, "struct_reader": 1}
    full = random_circuit(random.Random(0), small, 3, 4)
    every = [(a, b) for a in range(3) for b in range(4)]
    assert sorted(full["value_fetcher"] + full["pos_transmitter"]) == sorted(full["pos_detector"]) == every
    with pytest.raises(ValueError, match="cannot draw 13 distinct heads"):
        random_circuit(random.Random(0), {**small, "value_fetcher": 11}, 3, 4)


def test_overlap_on_a_hand_example():
    a = {
        "value_fetcher": [(1, 1), (2, 2), (3, 3)],
        "pos_transmitter": [(4, 4)],
        "pos_detector": [(1, 1)],
        "struct_reader": [],
    }
    b = {
        "value_fetcher": [(2, 2), (3, 3), (5, 5), (6, 6)],
        "pos_transmitter": [],
        "pos_detector": [(1, 1), (0, 0)],
        "struct_reader": [(7, 7)],
    }
    out = overlap(a, b)
    assert out["value_fetcher"] == {
        "size_a": 3,
        "size_b": 4,
        "intersection": 2,
        "precision": 2 / 3,
        "recall": 0.5,
    }
    assert out["pos_transmitter"]["intersection"] == 0
    assert out["pos_transmitter"]["precision"] == 0.0 and out["pos_transmitter"]["recall"] is None
    assert out["pos_detector"]["precision"] == 1.0 and out["pos_detector"]["recall"] == 0.5
    assert out["struct_reader"]["precision"] is None and out["struct_reader"]["recall"] == 0.0
    # overall: (group, head) pairs, so (1, 1) as value fetcher of a does not match it as position detector of b
    assert out["all"] == {"size_a": 5, "size_b": 7, "intersection": 3, "precision": 3 / 5, "recall": 3 / 7}
    assert overlap(a, a)["all"]["precision"] == overlap(a, a)["all"]["recall"] == 1.0


def test_nodes_and_keep_sets():
    c = {
        "value_fetcher": [(2, 1), (1, 0)],
        "pos_transmitter": [(1, 0), (0, 3)],  # (1, 0) is also a value fetcher: one node at the last token
        "pos_detector": [(1, 0)],
        "struct_reader": [(0, 0)],
    }
    nodes = circuit_nodes(c)
    assert nodes == [
        ("last", (2, 1)),
        ("last", (1, 0)),
        ("last", (0, 3)),
        ("query_label", (1, 0)),
        ("prev_query_label", (0, 0)),
    ]
    keep = keep_sets(c, [("last", (1, 0)), ("prev_query_label", (9, 9))])
    assert keep == {"last": {(2, 1), (0, 3)}, "query_label": {(1, 0)}, "prev_query_label": {(0, 0)}}
    full = full_model_keep(2, 3, [("query_label", (1, 2))])
    assert len(full["last"]) == len(full["prev_query_label"]) == 6
    assert full["query_label"] == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)}


# -------------------------------------------------------------------------------------------- minimality


CANDIDATES = {
    "value_fetcher": [(5, 1), (6, 2), (7, 3), (8, 4), (6, 0)],
    "pos_transmitter": [(4, 0), (4, 1), (3, 2)],
    "pos_detector": [(2, 0), (2, 1), (1, 3), (1, 4)],
    "struct_reader": [(0, 1), (0, 2)],
}
IMPORTANT = {
    "value_fetcher": [(6, 2), (8, 4), (6, 0)],
    "pos_transmitter": [(4, 1)],
    "pos_detector": [(2, 0), (2, 1), (1, 3), (1, 4)],
    "struct_reader": [],
}


def as_outcomes(acc: float, n: int = 200) -> torch.Tensor:
    """Per-prompt outcomes with accuracy ``acc``, the right ones first (nested sets: one-way differences)."""
    return torch.arange(n) < round(acc * n)


def outcomes_of(acc_fn: Any) -> Any:
    return lambda removed: as_outcomes(acc_fn(removed))


def test_minimality_keeps_exactly_the_important_heads():
    from entity_tracking.circuits import POSITION_OF

    important = {(POSITION_OF[g], h) for g in GROUPS for h in IMPORTANT[g]}
    calls: list[frozenset] = []

    def acc(removed: frozenset) -> float:
        calls.append(removed)
        return 1 - len(removed & important) / len(important)

    final, report = minimality(CANDIDATES, outcomes_of(acc), percentage=0.3, threshold=0.01)
    assert final == IMPORTANT
    assert report["full"] == 1.0
    assert len(calls) == len(set(calls)) == report["evaluations"]  # every removed set evaluated once
    sig = {tuple(r["head"]): r for r in report["groups"]["value_fetcher"]["significance"]}
    assert sig[(5, 1)]["score"] == 0.0 and sig[(5, 1)]["K"] == [] and not sig[(5, 1)]["kept"]
    assert sig[(6, 2)]["kept"] and sig[(6, 2)]["score"] > 0.01
    assert sig[(6, 2)]["lost"] == 25 and sig[(6, 2)]["gained"] == 0 and sig[(6, 2)]["p_value"] < 1e-6
    assert sig[(5, 1)]["p_value"] == 1.0 and sig[(5, 1)]["effect"] == 0.0
    assert report["groups"]["value_fetcher"]["k_size"] == 2  # ceil(0.3 * 5)
    pairs = report["groups"]["pos_detector"]["pairs"]
    assert len(pairs) == 4 * 5 // 2
    assert [[2, 0], [2, 1], pytest.approx(1 - 2 / 8)] in pairs


def test_significance_handles_zero_accuracy():
    assert significance(0.6, 0.5) == pytest.approx(0.2)
    assert significance(0.5, 0) == math.inf
    assert significance(0, 0) == 0.0
    assert significance(0.5, 0.5) == 0.0


def test_minimality_after_zero_is_essential_not_a_division_error():
    essential = ("query_label", (2, 1))

    def acc(removed: frozenset) -> float:
        return 0.0 if essential in removed else 0.9 - 0.1 * len(removed)

    final, report = minimality(CANDIDATES, outcomes_of(acc), percentage=0.5, threshold=0.5)
    assert (2, 1) in final["pos_detector"]
    row = next(r for r in report["groups"]["pos_detector"]["significance"] if r["head"] == [2, 1])
    assert row["after"] == 0.0 and row["before"] > 0 and row["essential"] and row["score"] is None and row["kept"]
    json.dumps(report, allow_nan=False)  # the report stays valid JSON

    # before == after == 0: nothing to lose; the paper's rule alone (alpha 1) keeps it at threshold 0, the test not
    final, report = minimality(CANDIDATES, outcomes_of(lambda removed: 0.0), percentage=0.5, threshold=0.0)
    rows = report["groups"]["struct_reader"]["significance"]
    assert all(r["score"] == 0.0 and not r["essential"] and r["p_value"] == 1.0 for r in rows)
    assert final["struct_reader"] == []
    final, _ = minimality(CANDIDATES, outcomes_of(lambda removed: 0.0), percentage=0.5, threshold=0.0, alpha=1.0)
    assert final["struct_reader"] == [(0, 1), (0, 2)]  # 0 >= threshold 0


def test_minimality_drops_a_head_whose_removal_changes_a_few_prompts():
    """The paper's ratio keeps a head for any drop; the paired test wants a drop beyond noise."""
    one = ("query_label", (2, 0))
    circuit = {"value_fetcher": [], "pos_transmitter": [], "pos_detector": [(2, 0), (2, 1)], "struct_reader": []}
    base = torch.arange(301) < 200

    def few(removed: frozenset) -> torch.Tensor:  # removing (2, 0) loses 2 prompts of 301, as on the organisms
        out = base.clone()
        if one in removed:
            out[:2] = False
        return out

    final, report = minimality(circuit, few, percentage=0.5, threshold=0.0)
    row = next(r for r in report["groups"]["pos_detector"]["significance"] if r["head"] == [2, 0])
    assert row["score"] > 0 and row["lost"] == 2 and row["p_value"] == 0.25 and not row["kept"]
    assert final["pos_detector"] == []
    # the paper's rule alone keeps both: (2, 0) for its 2 prompts, (2, 1) for a score of 0 >= threshold 0
    assert minimality(circuit, few, percentage=0.5, threshold=0.0, alpha=1.0)[0]["pos_detector"] == [(2, 0), (2, 1)]


def test_minimality_heads_with_the_same_index_in_different_layers_are_both_removed():
    """Regression: the original compared head ids by identity and removed only one of (3, 5) and (7, 5)."""
    circuit = {"value_fetcher": [], "pos_transmitter": [], "pos_detector": [(3, 5), (7, 5)], "struct_reader": []}
    a, b = ("query_label", (3, 5)), ("query_label", (7, 5))
    seen: list[frozenset] = []

    def acc(removed: frozenset) -> float:  # redundant pair: the task fails only without both
        seen.append(removed)
        return 0.0 if {a, b} <= removed else 1.0

    final, report = minimality(circuit, outcomes_of(acc), percentage=0.5, threshold=0.1)
    assert frozenset({a, b}) in seen
    assert final["pos_detector"] == [(3, 5), (7, 5)]
    pairs = report["groups"]["pos_detector"]["pairs"]
    assert [[3, 5], [7, 5], 0.0] in pairs and [[3, 5], [3, 5], 1.0] in pairs
    for row in report["groups"]["pos_detector"]["significance"]:
        assert len(row["K"]) == 1 and row["before"] == 1.0 and row["after"] == 0.0 and row["essential"]


# ----------------------------------------------------------------------------------------- mean ablation


@pytest.fixture(scope="module")
def organism() -> dict[str, Any]:
    lm, vocab = load_source(model_source(build_config({}), "organism-base"))
    data = generate(20240101, 7, {"ablation": 3, "eval": 3}, load_objects())
    parts = ModelParts.of(lm.model)
    enc = encode_records(lm.tokenizer, data["eval"], vocab)
    means = mean_z(parts, encode_mean_prompts(lm.tokenizer, data["ablation"], vocab, 0), batch_size=2)
    return {"parts": parts, "enc": enc, "means": means, "lm": lm, "vocab": vocab, "data": data}


def _z(parts: ModelParts, ids: torch.Tensor) -> list[torch.Tensor]:
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {("z", i): capture(store, i) for i in range(parts.num_layers)}):
        parts.model(input_ids=ids)
    return [store[i] for i in range(parts.num_layers)]


def test_mean_reference_prompts_one_per_context_seeded(organism):
    records = organism["data"]["ablation"]
    prompts = mean_reference_prompts(records, 5)
    assert len(prompts) == 3
    assert [p.text for p in prompts] == [p.text for p in mean_reference_prompts(records, 5)]
    for p, r in zip(prompts, [r for r in records if r["query"] == 0], strict=True):
        assert p.context == r["prompt"][: len(p.context)]


def test_mean_z_is_the_mean_of_captured_z(organism):
    parts, enc = organism["parts"], organism["enc"]
    ids = enc.input_ids[:5]
    z = _z(parts, ids)
    means = mean_z(parts, enc.select(slice(0, 5)), batch_size=2)
    assert means.shape == (parts.num_layers, ids.shape[1], parts.heads, parts.head_dim) == (4, ids.shape[1], 8, 16)
    assert means.dtype == torch.float32
    for layer in range(parts.num_layers):
        torch.testing.assert_close(means[layer], z[layer].mean(0), rtol=0, atol=1e-6)
    one = mean_z(parts, enc.select(slice(2, 3)), batch_size=4)
    assert all(torch.equal(one[layer], z[layer][2]) for layer in range(parts.num_layers))


def test_ablating_everything_with_a_prompts_own_mean_changes_nothing(organism):
    parts, enc = organism["parts"], organism["enc"]
    b = enc.select(slice(2, 3))
    own = mean_z(parts, b, batch_size=1)
    nothing = {p: set() for p in POSITIONS}
    positions = {cls: getattr(b, cls) for cls in POSITIONS}
    with torch.no_grad():
        clean = parts.model(input_ids=b.input_ids).logits
        with intervene(parts, ablation_edits(parts, positions, nothing, own, ablate_context=True)):
            same = parts.model(input_ids=b.input_ids).logits
        other = mean_z(parts, enc.select(slice(3, 4)), batch_size=1)
        with intervene(parts, ablation_edits(parts, positions, nothing, other, ablate_context=True)):
            changed = parts.model(input_ids=b.input_ids).logits
    assert torch.equal(same, clean)
    assert not torch.allclose(changed, clean)


def test_keeping_every_head_without_context_ablation_is_the_plain_model(organism):
    parts, enc, means = organism["parts"], organism["enc"], organism["means"]
    ablator = Ablator(parts, enc, means, batch_size=8)
    plain = ablator.accuracy(None)
    assert plain > 0.5  # the trained organism does the task
    keep = full_model_keep(parts.num_layers, parts.heads)
    assert ablator.accuracy(keep, ablate_context=False) == plain
    assert torch.equal(ablator.predictions(keep, ablate_context=False), ablator.predictions(None))
    torch.testing.assert_close(ablated_logits(parts, enc, keep, means, 8, ablate_context=False),
                               ablated_logits(parts, enc, None, None, 8), rtol=0, atol=0)  # fmt: skip
    # removing the strongest value fetcher at the last token (only there) costs accuracy
    without = full_model_keep(parts.num_layers, parts.heads, [("last", (2, 0))])
    assert ablator.accuracy(without, ablate_context=False) < plain


def test_ablation_edits_reject_short_means(organism):
    parts, enc, means = organism["parts"], organism["enc"], organism["means"]
    positions = {cls: getattr(enc, cls) for cls in POSITIONS}
    with pytest.raises(ValueError, match="covers 10 positions"):
        ablation_edits(parts, positions, full_model_keep(3, 4), means[:, :10], ablate_context=True)


def test_original_circuit_evaluates_on_a_32_by_32_toy_llama(original_file, bos_tokenizer, objects, small_data):
    model = build_model(
        bos_tokenizer, arch="llama", layers=32, hidden=64, heads=32, kv_heads=32, intermediate=64, seed=4
    )
    parts = ModelParts.of(model)
    assert parts.head_dim == 2
    circuit = load_circuit(original_file, parts.num_layers, parts.heads)
    keep = keep_sets(circuit)
    vocab = check_vocabulary(bos_tokenizer, objects)
    means = mean_z(parts, encode_mean_prompts(bos_tokenizer, small_data["ablation"], vocab, 1), batch_size=3)
    enc = encode_records(bos_tokenizer, small_data["eval"][:6], vocab)
    acc = Ablator(parts, enc, means, batch_size=6).accuracy(keep)
    assert 0.0 <= acc <= 1.0
    # the edits: kept heads untouched at their positions, everything else takes the mean
    positions = {cls: getattr(enc, cls) for cls in POSITIONS}
    edits = ablation_edits(parts, positions, keep, means, ablate_context=True)
    pre: dict[Any, torch.Tensor] = {}
    post: dict[Any, torch.Tensor] = {}
    wrapped = {k: chain(capture(pre, k[1]), fn, capture(post, k[1])) for k, fn in edits.items()}
    with torch.no_grad(), intervene(parts, wrapped):
        parts.model(input_ids=enc.input_ids)
    b, t = enc.input_ids.shape
    rows = torch.arange(b)
    special = torch.stack([positions[c] for c in POSITIONS], 1)  # [B, 3]
    context = torch.ones(b, t, dtype=torch.bool)
    context[rows[:, None], special] = False
    ablated_last = 0
    for layer in range(parts.num_layers):
        assert torch.equal(post[layer][context], means[layer][None].expand(b, -1, -1, -1)[context])
        for cls in POSITIONS:
            p = positions[cls]
            got, before, mean = post[layer][rows, p], pre[layer][rows, p], means[layer][p]
            for head in range(parts.heads):
                if (layer, head) in keep[cls]:
                    assert torch.equal(got[:, head], before[:, head])
                else:
                    assert torch.equal(got[:, head], mean[:, head])
                    if cls == "last":  # the mean really differs from the head's own output there
                        assert (before[:, head] != mean[:, head]).any(-1).all(), (layer, head)
                        ablated_last += 1
    assert ablated_last == 32 * 32 - 47  # every head but the 47 value fetchers and transmitters


def test_safetensors_header_is_canonical(tmp_path):
    """safetensors writes metadata in hash-map order; ours sorts it so reruns give identical bytes."""
    import json as _json

    from entity_tracking.io import read_safetensors, write_safetensors

    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"b": torch.ones(3), "a": torch.arange(4.0)}, {"z": "1", "a": "2", "m": "3"})
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    assert size % 8 == 0
    header = raw[8 : 8 + size].decode().rstrip()
    assert header == _json.dumps(_json.loads(header), sort_keys=True, separators=(",", ":"))
    assert read_safetensors(path)["a"].tolist() == [0.0, 1.0, 2.0, 3.0]


def _ablator_setups(organism, bos_tokenizer, nobos_tokenizer, objects, small_data):
    """The organism, and GQA toys of Llama and Qwen2 (biases) with sharpened weights."""
    yield "organism", organism["parts"], organism["enc"], organism["means"]
    for arch, tok in (("llama", bos_tokenizer), ("qwen2", nobos_tokenizer)):
        model = build_model(tok, arch=arch, layers=3, hidden=64, heads=4, kv_heads=2, seed=9)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" not in name:
                    p.mul_(6.0)
        parts = ModelParts.of(model)
        vocab = check_vocabulary(tok, objects)
        means = mean_z(parts, encode_mean_prompts(tok, small_data["ablation"], vocab, 1), batch_size=3)
        yield arch, parts, encode_records(tok, small_data["eval"][:21], vocab), means


def test_ablator_equals_the_full_forward_definition(organism, bos_tokenizer, nobos_tokenizer, objects, small_data):
    """The fast evaluator (three-token reruns over a fully ablated run; clean suffixes) gives the predictions of
    full forwards with ablation_edits, for circuits, the empty circuit, the full model and random K."""
    rng = random.Random(0)
    for name, parts, enc, means in _ablator_setups(organism, bos_tokenizer, nobos_tokenizer, objects, small_data):
        every = [(layer, head) for layer in range(parts.num_layers) for head in range(parts.heads)]
        keeps = [{p: set() for p in POSITIONS}, full_model_keep(parts.num_layers, parts.heads)]
        keeps += [{p: set(rng.sample(every, 5)) for p in POSITIONS} for _ in range(4)]
        removed = [(p, h) for p in POSITIONS for h in rng.sample(every, 3)]
        keeps.append(full_model_keep(parts.num_layers, parts.heads, removed))
        for keep_runs in (True, False):
            ablator = Ablator(parts, enc, means, batch_size=4, keep_runs=keep_runs)
            torch.testing.assert_close(
                ablator.logits(None), ablated_logits(parts, enc, None, None, 8), rtol=0, atol=1e-5
            )
            for keep in keeps:
                for context in (True, False):
                    want = ablated_logits(parts, enc, keep, means, 8, ablate_context=context)
                    torch.testing.assert_close(ablator.logits(keep, context), want, rtol=0, atol=1e-5)
                    assert torch.equal(ablator.predictions(keep, context), want.argmax(-1)), (name, keep, context)
