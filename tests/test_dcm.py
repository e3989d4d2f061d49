"""DCM and activation patching on a tiny model: mask semantics, loss, training, chance floors, outputs."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from entity_tracking.activation_patching import run_activation_patching, write_activation_patching_table
from entity_tracking.circuits import save_circuit
from entity_tracking.config import build_config
from entity_tracking.dataset import generate
from entity_tracking.dcm import (
    BaseRuns,
    Split,
    accuracy_with,
    dcm_loss,
    encode_pairs,
    outcomes_with,
    patched_group_logits,
    run_dcm,
    run_group,
    source_z,
    train_mask,
)
from entity_tracking.desiderata import build_examples, write_desiderata
from entity_tracking.evaluation import last_token_logits
from entity_tracking.interventions import ModelParts, intervene, patch
from entity_tracking.io import read_json, write_jsonl
from entity_tracking.layout import dcm_plan
from entity_tracking.model_specs import model_source
from entity_tracking.stats import outcome_string, parse_outcomes
from entity_tracking.tokenization import check_vocabulary, encode_records
from entity_tracking.toy import build_model

SETTINGS = {"lr": 0.1, "epochs": 2, "batch_size": 8, "lambda": 0.01, "validate_every": 2, "seed": 3}
HEADS = {
    "last": [(1, 0), (2, 3), (2, 1)],
    "query_label": [(0, 2), (2, 0)],
    "prev_query_label": [(0, 1), (1, 3)],
}


@pytest.fixture(scope="module")
def toy(bos_tokenizer, objects) -> dict[str, Any]:
    model = build_model(bos_tokenizer, layers=3, hidden=64, heads=4, kv_heads=2, seed=5)
    with torch.no_grad():  # larger weights: interventions have visible effects
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(6.0)
    records = generate(11, 7, {"dcm_train": 6, "dcm_val": 4, "dcm_test": 4}, objects)
    return {"parts": ModelParts.of(model), "vocab": check_vocabulary(bos_tokenizer, objects), "records": records}


def _split(toy, tok, split: str, desideratum: str, position: str, seed: int = 1) -> Split:
    recs = toy["records"][split]
    base = encode_records(tok, recs, toy["vocab"])
    pairs = encode_pairs(tok, build_examples(desideratum, recs, seed, split), recs, base, toy["vocab"])
    runs = BaseRuns(toy["parts"], base, 16, keep=True)
    return Split(pairs, runs, source_z(toy["parts"], pairs.source, [position], 16)[position])


@pytest.mark.parametrize("position", list(HEADS))
def test_mask_ones_is_the_base_and_zeros_is_the_source_patch(toy, bos_tokenizer, position):
    parts, heads = toy["parts"], HEADS[position]
    split = _split(toy, bos_tokenizer, "dcm_test", "positional", position)
    pairs, rows = split.pairs, torch.arange(len(split.pairs))
    positions = getattr(pairs.base, position)
    with torch.no_grad():
        plain = parts.model(input_ids=pairs.base.input_ids).logits[:, -1]
        ones = patched_group_logits(parts, split.runs, rows, heads, torch.ones(len(heads)), positions, split.src)
        zeros = patched_group_logits(parts, split.runs, rows, heads, torch.zeros(len(heads)), positions, split.src)
        # reference: a full forward with the heads' z replaced by the source's z at the source's own position
        src_pos = getattr(pairs.source, position)
        store: dict = {}
        with intervene(parts, {("z", layer): _capture_at(store, layer, src_pos) for layer in range(3)}):
            parts.model(input_ids=pairs.source.input_ids)
        edits = {}
        for layer in {h[0] for h in heads}:
            hs = torch.tensor([h for lyr, h in heads if lyr == layer])
            edits[("z", layer)] = patch(positions, hs, store[layer][:, hs])
        with intervene(parts, edits):
            want = parts.model(input_ids=pairs.base.input_ids).logits[:, -1]
    torch.testing.assert_close(ones, plain, rtol=0, atol=1e-5)
    torch.testing.assert_close(zeros, want, rtol=0, atol=1e-5)
    assert (zeros - plain).abs().max() > 1e-2  # the patch matters


def _capture_at(store: dict, key: int, positions: torch.Tensor):
    def fn(view: torch.Tensor) -> None:
        store[key] = view[torch.arange(view.shape[0]), positions].detach().clone()

    return fn


def test_loss_is_target_logit_plus_lambda_sparsity():
    logits = torch.tensor([[1.0, 5.0, -2.0], [0.5, 0.0, 3.0]])
    labels = torch.tensor([1, 2])
    mask = torch.tensor([1.0, 0.25, 0.0], requires_grad=True)
    loss = dcm_loss(logits, labels, mask, 0.5)
    assert loss.item() == pytest.approx(-(5.0 + 3.0) / 2 + 0.5 * (0 + 0.75 + 1.0))
    loss.backward()
    assert torch.equal(mask.grad, torch.full((3,), -0.5))  # the sparsity term pushes every mask towards 1


def test_training_lowers_the_loss_and_is_deterministic(toy, bos_tokenizer):
    parts, heads = toy["parts"], HEADS["last"]
    train = _split(toy, bos_tokenizer, "dcm_train", "object_value", "last")
    val = _split(toy, bos_tokenizer, "dcm_val", "object_value", "last")
    free = {**SETTINGS, "lambda": 0.0}
    a = train_mask(parts, heads, "last", train, val, free)
    b = train_mask(parts, heads, "last", train, val, free)
    assert a["curve"] == b["curve"] and torch.equal(a["best"]["mask"], b["best"]["mask"])
    rows = torch.arange(len(train.pairs))
    positions = train.pairs.base.last

    def train_loss(mask: torch.Tensor) -> float:
        with torch.no_grad():
            logits = patched_group_logits(parts, train.runs, rows, heads, mask, positions, train.src)
            return dcm_loss(logits, train.pairs.labels, mask, 0.0).item()

    assert train_loss(a["final"].clamp(0, 1)) < train_loss(torch.ones(len(heads)))  # learning happened
    assert a["final"].min() < 0.5  # and moved a head past the binarisation threshold
    # validation every 2 steps over 2 epochs of 42 records in batches of 8 (6 steps each)
    assert [c["step"] for c in a["curve"]] == [0, 2, 4, 6, 8, 10]
    # an overwhelming sparsity weight keeps every head unpatched
    stiff = train_mask(parts, heads, "last", train, val, {**SETTINGS, "lambda": 1e4})
    assert all(c["selected"] == 0 for c in stiff["curve"])


def test_chance_floor_is_the_plain_models_agreement_with_the_labels(toy, bos_tokenizer):
    parts = toy["parts"]
    split = _split(toy, bos_tokenizer, "dcm_test", "positional", "last")
    floor = accuracy_with(parts, split.runs, split.pairs, [], torch.ones(0), "last", split.src)
    preds = last_token_logits(parts.model, split.pairs.base, 8).argmax(-1)
    assert floor == pytest.approx(float((preds == split.pairs.labels).float().mean()))
    # labels equal to the base's answers make the floor the model's task accuracy
    split.pairs.labels = split.pairs.base.answer_ids
    acc = float((preds == split.pairs.base.answer_ids).float().mean())
    assert accuracy_with(parts, split.runs, split.pairs, [], torch.ones(0), "last", split.src) == pytest.approx(acc)


def test_run_group_scores_the_best_mask_and_the_floor(toy, bos_tokenizer):
    parts, heads = toy["parts"], HEADS["query_label"]
    splits = [_split(toy, bos_tokenizer, s, "positional", "query_label") for s in ("dcm_train", "dcm_val", "dcm_test")]
    out = run_group(parts, heads, "query_label", *splits, SETTINGS)
    binary = torch.tensor([0.0 if list(h) in out["selected"] else 1.0 for h in heads])
    test = splits[2]
    assert out["test_accuracy"] == accuracy_with(parts, test.runs, test.pairs, heads, binary, "query_label", test.src)
    hits = outcomes_with(parts, test.runs, test.pairs, heads, binary, "query_label", test.src)
    assert out["test_outcomes"] == outcome_string(hits)  # per test pair, in pair order
    for key, acc in (("test_outcomes", "test_accuracy"), ("floor_outcomes", "chance_floor")):
        assert len(out[key]) == len(test.pairs) == 28
        assert parse_outcomes(out[key]).mean() == out[acc]  # exactly the reported accuracy
    assert out["val_accuracy"] == max(c["val_accuracy"] for c in out["validation"])
    assert all(0.0 <= m <= 1.0 for m in out["mask"]) and len(out["mask"]) == len(heads)
    empty = run_group(parts, [], "query_label", *splits, SETTINGS)
    assert empty["selected"] == [] and empty["test_accuracy"] == empty["chance_floor"] == out["chance_floor"]
    assert empty["test_outcomes"] == empty["floor_outcomes"] == out["floor_outcomes"]  # nothing patched: the floor


@pytest.fixture(scope="module")
def dcm_run(tmp_path_factory, objects):
    """run_dcm and run_activation_patching on a study of two toy models, with a hand-made circuit."""
    tmp = tmp_path_factory.mktemp("dcm")
    models = {
        "a": {"role": "base", "source": "builtin", "builtin": {"arch": "llama", "layers": 3, "seed": 1}},
        "b": {"role": "base", "source": "builtin", "builtin": {"arch": "llama", "layers": 3, "seed": 2}},
    }
    cfg = build_config(
        {
            "study": "toy",
            "device": "cpu",
            "models": models,
            "dcm": {
                "batch_size": 8,
                "eval_batch_size": 16,
                "epochs": 1,
                "desiderata": ["positional", "object_value"],
                "additional_desiderata": ["no_comma"],
            },
            "activation_patching": {"repeats": 2, "batch_size": 16},
        }
    )
    records = generate(4, 7, {"dcm_train": 6, "dcm_val": 4, "dcm_test": 4}, objects)
    files = {}
    for split, recs in records.items():
        files[split] = tmp / f"{split}.jsonl"
        write_jsonl(files[split], recs)
    write_desiderata({s: records[s] for s in files}, ["positional", "object_value", "no_comma"],
                     20, tmp / "desiderata")  # fmt: skip
    circuit = {"value_fetcher": [[2, 1]], "pos_transmitter": [[1, 0], [2, 3]], "pos_detector": [[0, 2]],
               "struct_reader": []}  # fmt: skip
    save_circuit(tmp / "circuit.json", {g: [tuple(h) for h in hs] for g, hs in circuit.items()})
    plan, ap = dcm_plan(cfg), cfg["activation_patching"]
    a, b = model_source(cfg, "a"), model_source(cfg, "b")
    results = run_dcm("a", a, tmp / "circuit.json", files, tmp / "desiderata", tmp / "dcm", plan, cfg["dcm"])
    ap = run_activation_patching(b, ["a"], files["dcm_test"], tmp / "dcm", tmp / "ap.json", plan, ap["seed"],
                                 ap["repeats"], ap["batch_size"], cfg["dcm"]["cache_clean_runs"])  # fmt: skip
    return {"tmp": tmp, "results": results, "ap": ap, "circuit": circuit}


def test_run_dcm_writes_every_group_and_desideratum(dcm_run):
    results, tmp = dcm_run["results"], dcm_run["tmp"]
    names = [(r["group"], r["desideratum"]) for r in results]
    assert len(names) == 4 * 2 + 1 and ("pos_transmitter", "no_comma") in names
    for r in results:
        saved = read_json(tmp / "dcm" / "a" / r["group"] / f"{r['desideratum']}.json")
        assert saved == r and saved["heads"] == dcm_run["circuit"][r["group"]]
        assert set(map(tuple, saved["selected"])) <= set(map(tuple, saved["heads"]))
        assert saved["records"] == {"dcm_train": 42, "dcm_val": 28, "dcm_test": 28}
        assert 0.0 <= saved["chance_floor"] <= 1.0 and "test_accuracy" in saved
        for key, acc in (("test_outcomes", "test_accuracy"), ("floor_outcomes", "chance_floor")):
            assert len(saved[key]) == saved["records"]["dcm_test"]
            assert parse_outcomes(saved[key]).mean() == saved[acc]
    sr = next(r for r in results if r["group"] == "struct_reader")
    assert sr["selected"] == [] and sr["test_accuracy"] == sr["chance_floor"]  # an empty group patches nothing
    assert sr["test_outcomes"] == sr["floor_outcomes"]
    for r in results:  # one floor per desideratum: the same test pairs, whatever the group
        assert r["floor_outcomes"] == next(x for x in results if x["desideratum"] == r["desideratum"])["floor_outcomes"]


def test_activation_patching_table_and_floors(dcm_run):
    ap, tmp = dcm_run["ap"], dcm_run["tmp"]
    assert ap["model"] == "b" and ap["repeats"] == 2 and len(ap["seeds"]) == 2
    cell = ap["circuits"]["a"]["pos_transmitter"]["positional"]
    dcm = read_json(tmp / "dcm" / "a" / "pos_transmitter" / "positional.json")
    assert cell["heads"] == dcm["selected"]
    assert len(cell["accuracy"]["values"]) == 2
    assert cell["chance_floor_mean"] == ap["chance_floor"]["positional"]["mean"]
    empty = ap["circuits"]["a"]["struct_reader"]["positional"]
    assert empty["heads"] == [] and empty["accuracy"]["values"] == ap["chance_floor"]["positional"]["values"]
    write_activation_patching_table([tmp / "ap.json"], tmp / "ap.csv")
    lines = (tmp / "ap.csv").read_text().splitlines()
    assert lines[0].startswith("circuit,model,group,desideratum,heads,accuracy_mean")
    assert len(lines) == 1 + 4 * 2 + 1


def test_sources_that_are_records_come_from_the_clean_runs(toy, bos_tokenizer):
    """Plain sources are records of the split: their z is looked up, and equals a forward over the sources."""
    recs = toy["records"]["dcm_val"]
    base = encode_records(bos_tokenizer, recs, toy["vocab"])
    runs = BaseRuns(toy["parts"], base, 8, keep=False)
    positions = ["last", "query_label", "prev_query_label"]
    for desideratum, looked_up in (("incorrect_segment", True), ("add_comma", False)):
        pairs = encode_pairs(bos_tokenizer, build_examples(desideratum, recs, 2, "dcm_val"), recs, base, toy["vocab"])
        assert (pairs.source_rows is not None) == looked_up
        got = runs.sources(pairs, positions)
        want = source_z(toy["parts"], pairs.source, positions, 5)
        for p in positions:
            for layer in range(3):
                torch.testing.assert_close(got[p][layer], want[p][layer], rtol=0, atol=1e-6)
