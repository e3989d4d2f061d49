"""Path patching: fast and reference methods agree, on the shipped organism and on Qwen2 and Mistral toys."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from entity_tracking.circuits import top_heads
from entity_tracking.config import build_config
from entity_tracking.dataset import generate, load_objects
from entity_tracking.interventions import ModelParts
from entity_tracking.models import load_for_study
from entity_tracking.path_patching import STAGES, path_patching, prepare_data, stage_scores
from entity_tracking.tokenization import check_vocabulary
from entity_tracking.toy import build_model

TOPK = {"value_fetcher": 3, "pos_transmitter": 2, "pos_detector": 3, "struct_reader": 2}
ATOL = 1e-5


@pytest.fixture(scope="module")
def organism() -> dict[str, Any]:
    lm, vocab = load_for_study(build_config({}), "organism-base")
    records = generate(20240101, 7, {"discovery": 6}, load_objects())["discovery"][:40]
    parts = ModelParts.of(lm.model)
    data = prepare_data(lm.tokenizer, records, vocab)
    return {"parts": parts, "data": data, "tokenizer": lm.tokenizer, "vocab": vocab, "records": records}


@pytest.fixture(scope="module")
def organism_results(organism) -> dict[str, Any]:
    parts, data = organism["parts"], organism["data"]
    return {m: path_patching(parts, data, TOPK, metric="prob", method=m) for m in ("fast", "reference")}


def test_organism_data_positions(organism):
    data = organism["data"]
    assert len(data) == 40
    assert data.clean.input_ids.shape == data.corrupt.input_ids.shape == (40, 54)
    # the stored random segment picks one of the counterfactual's label positions
    for i, r in enumerate(organism["records"]):
        seg = r["counterfactual"]["random_segment"]
        assert data.corrupt_random_label[i] == data.corrupt.labels[i, seg]
    p0, pc = data.positions("struct_reader")
    assert torch.equal(p0, data.clean.prev_query_label) and torch.equal(pc, data.corrupt_random_label)
    assert len(set(p0.tolist())) > 1  # struct-reader positions vary across examples (several suffix starts)


def test_fast_matches_reference_on_organism(organism_results):
    fast, ref = organism_results["fast"], organism_results["reference"]
    for stage in STAGES:
        assert fast[stage]["receivers"] == ref[stage]["receivers"], stage
        for metric in ("prob", "logit"):
            a, b = fast[stage]["scores"][metric], ref[stage]["scores"][metric]
            assert a.shape == b.shape == (3, 4) and a.dtype == b.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=0, atol=ATOL, msg=f"{stage} {metric}")
            # tighter, relative to the stage's own scale: the position-detector scores of this small model
            # are only ~1e-4, so the absolute 1e-5 alone would hardly test that stage
            assert (a - b).abs().max() <= max(1e-6, 1e-2 * b.abs().max()), (stage, metric)
        assert fast[stage]["top"] == ref[stage]["top"], stage
    # the chain: each stage's receivers are the previous stage's top heads
    assert fast["value_fetcher"]["receivers"] == []
    for prev, stage in itertools.pairwise(STAGES):
        assert fast[stage]["receivers"] == fast[prev]["top"]
    assert [len(fast[s]["top"]) for s in STAGES] == [3, 2, 3, 2]


def test_organism_scores_are_not_trivial(organism_results):
    fast = organism_results["fast"]
    vf = fast["value_fetcher"]["scores"]
    assert top_heads(vf["prob"], 1) == [(2, 1)]
    assert vf["prob"][2, 1] < -0.3
    assert vf["logit"][2, 1] < 0
    assert fast["value_fetcher"]["top"][0] == (2, 1)
    # the scale of each stage's strongest effect on this model (the position detector's is small)
    scale = {"value_fetcher": 0.3, "pos_transmitter": 5e-3, "pos_detector": 1e-5, "struct_reader": 1e-2}
    for stage in STAGES:
        scores = fast[stage]["scores"]["prob"]
        top_layer = max((layer for layer, _ in fast[stage]["receivers"]), default=3)
        assert (scores[:top_layer] != 0).all(), stage
        assert scores.abs().max() > scale[stage], stage
    assert fast["struct_reader"]["scores"]["prob"].min() < -1e-2


def test_fast_senders_at_or_above_the_top_receiver_score_zero(organism_results):
    fast = organism_results["fast"]
    for stage in STAGES[1:]:
        top_layer = max(layer for layer, _ in fast[stage]["receivers"])
        for metric in ("prob", "logit"):
            assert torch.equal(fast[stage]["scores"][metric][top_layer:], torch.zeros(3 - top_layer, 4))


def test_fast_is_deterministic_and_batching_does_not_matter(organism, organism_results):
    parts, data = organism["parts"], organism["data"]
    receivers = organism_results["fast"]["struct_reader"]["receivers"]
    once = stage_scores(parts, data, "struct_reader", receivers, method="fast")
    twice = stage_scores(parts, data, "struct_reader", receivers, method="fast")
    for metric in ("prob", "logit"):
        assert torch.equal(once[metric], twice[metric])
        assert torch.equal(once[metric], organism_results["fast"]["struct_reader"]["scores"][metric])
    # several batches and small suffix chunks give the same numbers
    small = stage_scores(parts, data, "struct_reader", receivers, method="fast", batch_size=16, max_rows=5)
    for metric in ("prob", "logit"):
        torch.testing.assert_close(small[metric], once[metric], rtol=0, atol=1e-6)


def test_path_patching_without_shared_clean_runs(organism, organism_results):
    res = path_patching(organism["parts"], organism["data"], TOPK, method="fast", share_clean_runs=False)
    for stage in STAGES:
        for metric in ("prob", "logit"):
            assert torch.equal(res[stage]["scores"][metric], organism_results["fast"][stage]["scores"][metric])


def test_prepare_data_rejects_records_without_counterfactual(organism, small_data):
    tok, vocab = organism["tokenizer"], organism["vocab"]
    with pytest.raises(ValueError, match="counterfactual"):
        prepare_data(tok, small_data["eval"][:3], vocab)
    mixed = [*organism["records"][:2], small_data["eval"][0]]
    with pytest.raises(ValueError, match=r"eval/00000/0.*counterfactual"):
        prepare_data(tok, mixed, vocab)


def test_stage_scores_argument_errors(organism):
    parts, data = organism["parts"], organism["data"]
    with pytest.raises(ValueError, match="unknown path-patching method"):
        stage_scores(parts, data, "value_fetcher", [], method="slow")
    with pytest.raises(ValueError, match="takes no receivers"):
        stage_scores(parts, data, "value_fetcher", [(1, 1)])
    with pytest.raises(ValueError, match="needs receivers"):
        stage_scores(parts, data, "pos_transmitter", [])


# ------------------------------------------- Qwen2 toy (GQA, biases, no BOS) and Mistral toy (GQA, one kv head)


@pytest.fixture(scope="module", params=["qwen2", "mistral"])
def gqa(request, nobos_tokenizer, bos_tokenizer, objects, small_data) -> dict[str, Any]:
    arch = request.param
    tok = nobos_tokenizer if arch == "qwen2" else bos_tokenizer
    kv = 2 if arch == "qwen2" else 1
    model = build_model(tok, arch=arch, layers=3, hidden=64, heads=4, kv_heads=kv, seed=11)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # larger weights and non-zero biases: scores far from 0, biases exercised
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif "norm" not in name:
                p.mul_(8.0)
    vocab = check_vocabulary(tok, objects)
    data = prepare_data(tok, small_data["discovery"][:21], vocab)
    return {"arch": arch, "parts": ModelParts.of(model), "data": data}


GQA_RECEIVERS = {
    "value_fetcher": [],
    "pos_transmitter": [(1, 0), (2, 3)],  # q composition, two layers
    "pos_detector": [(1, 1), (2, 2), (2, 3)],  # v: (2, 2) and (2, 3) share a kv head, patched once
    "struct_reader": [(2, 0)],  # v, one receiver layer
}


@pytest.mark.parametrize("stage", STAGES)
def test_fast_matches_reference_on_gqa_models(gqa, stage):
    parts, data = gqa["parts"], gqa["data"]
    if gqa["arch"] == "qwen2":
        assert parts.kv_heads == 2 and parts.module("v", 0).bias is not None
    else:
        assert parts.kv_heads == 1 and parts.model.config.sliding_window == 4096
    receivers = GQA_RECEIVERS[stage]
    fast = stage_scores(parts, data, stage, receivers, method="fast", batch_size=8, max_rows=12)
    ref = stage_scores(parts, data, stage, receivers, method="reference", batch_size=8)
    for metric in ("prob", "logit"):
        torch.testing.assert_close(fast[metric], ref[metric], rtol=0, atol=ATOL, msg=f"{stage} {metric}")
        assert (fast[metric] - ref[metric]).abs().max() <= max(1e-6, 1e-2 * ref[metric].abs().max()), metric
    top_layer = max((layer for layer, _ in receivers), default=parts.num_layers)
    assert (fast["prob"][:top_layer].abs() > 1e-3).any()  # a comparison of non-trivial numbers
    for metric in ("prob", "logit"):
        assert torch.equal(fast[metric][top_layer:], torch.zeros(parts.num_layers - top_layer, parts.heads))
        torch.testing.assert_close(
            ref[metric][top_layer:], torch.zeros(parts.num_layers - top_layer, parts.heads), rtol=0, atol=ATOL
        )
    assert top_heads(fast["prob"], 3) == top_heads(ref["prob"], 3)
