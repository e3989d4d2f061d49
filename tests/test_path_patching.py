"""Path patching: fast and reference methods agree, on the shipped organism and on Qwen2 and Mistral toys;
per-example scores; the noise guard's chain on the organism; a null patch scores 0."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from entity_tracking.circuits import top_heads
from entity_tracking.config import build_config
from entity_tracking.dataset import generate, load_objects
from entity_tracking.interventions import ModelParts
from entity_tracking.model_specs import model_source
from entity_tracking.models import load_source
from entity_tracking.path_patching import (
    DEFAULT_SELECTION,
    STAGES,
    PathPatchingData,
    path_patching,
    prepare_data,
    stage_scores,
)
from entity_tracking.tokenization import check_vocabulary
from entity_tracking.toy import build_model

TOPK = {"value_fetcher": 3, "pos_transmitter": 2, "pos_detector": 3, "struct_reader": 2}
ATOL = 1e-5
# No noise guard: every eligible head with a mean below 1 qualifies, so all four stages run (to compare methods)
NO_GUARD = {"alpha": 1.0, "correction": "none", "min_effect": -1.0}


def mean(result: dict[str, Any], stage: str, metric: str) -> torch.Tensor:
    """A stage's mean score ``[L, H]`` from its per-example scores."""
    return result[stage]["examples"][metric].double().mean(0).float()


@pytest.fixture(scope="module")
def organism() -> dict[str, Any]:
    lm, vocab = load_source(model_source(build_config({}), "organism-base"))
    records = generate(20240101, 7, {"discovery": 6}, load_objects())["discovery"][:40]
    parts = ModelParts.of(lm.model)
    data = prepare_data(lm.tokenizer, records, vocab)
    return {"parts": parts, "data": data, "tokenizer": lm.tokenizer, "vocab": vocab, "records": records}


# Receivers of each stage on the organism, fixed (the chain itself: test_selection.py and the noise-guard test
# below): every stage then has effects to compare, the position transmitter's small (~0.04).
RECEIVERS = {
    "value_fetcher": [],
    "pos_transmitter": [(2, 0), (2, 6), (1, 1)],
    "pos_detector": [(2, 0), (2, 6)],
    "struct_reader": [(1, 1), (1, 5), (1, 3)],
}


@pytest.fixture(scope="module")
def organism_results(organism) -> dict[str, Any]:
    parts, data = organism["parts"], organism["data"]
    return {
        m: {s: {"receivers": r, "examples": stage_scores(parts, data, s, r, method=m)} for s, r in RECEIVERS.items()}
        for m in ("fast", "reference")
    }


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
            ea, eb = fast[stage]["examples"][metric], ref[stage]["examples"][metric]
            assert ea.shape == eb.shape == (40, 4, 8) and ea.dtype == eb.dtype == torch.float32
            torch.testing.assert_close(ea, eb, rtol=0, atol=10 * ATOL, msg=f"{stage} {metric} per example")
            a, b = mean(fast, stage, metric), mean(ref, stage, metric)
            torch.testing.assert_close(a, b, rtol=0, atol=ATOL, msg=f"{stage} {metric}")
            # tighter, relative to the stage's own scale: a stage whose scores are small would hardly be
            # tested by the absolute 1e-5 alone
            assert (a - b).abs().max() <= max(1e-6, 1e-2 * b.abs().max()), (stage, metric)
        assert top_heads(mean(fast, stage, "prob"), 2) == top_heads(mean(ref, stage, "prob"), 2), stage


def test_organism_scores_are_not_trivial(organism_results):
    fast = organism_results["fast"]
    vf = {m: mean(fast, "value_fetcher", m) for m in ("prob", "logit")}
    assert top_heads(vf["prob"], 1) == [(2, 0)]
    assert vf["prob"][2, 0] < -0.3
    assert vf["logit"][2, 0] < 0
    # the scale of each stage's strongest effect on this model (the position transmitter's is small)
    scale = {"value_fetcher": 0.3, "pos_transmitter": 1e-2, "pos_detector": 0.1, "struct_reader": 1e-2}
    for stage in STAGES:
        scores = mean(fast, stage, "prob")
        top_layer = max((layer for layer, _ in fast[stage]["receivers"]), default=4)
        assert (scores[:top_layer] != 0).all(), stage
        assert scores.abs().max() > scale[stage], stage
    assert mean(fast, "struct_reader", "prob").min() < -1e-2


def test_fast_senders_at_or_above_the_top_receiver_score_zero(organism_results):
    fast = organism_results["fast"]
    for stage in STAGES[1:]:
        top_layer = max(layer for layer, _ in fast[stage]["receivers"])
        for metric in ("prob", "logit"):
            x = fast[stage]["examples"][metric]
            assert torch.equal(x[:, top_layer:], torch.zeros(len(x), 4 - top_layer, 8))


def test_fast_is_deterministic_and_batching_does_not_matter(organism, organism_results):
    parts, data = organism["parts"], organism["data"]
    receivers = organism_results["fast"]["struct_reader"]["receivers"]
    once = stage_scores(parts, data, "struct_reader", receivers, method="fast")
    twice = stage_scores(parts, data, "struct_reader", receivers, method="fast")
    for metric in ("prob", "logit"):
        assert torch.equal(once[metric], twice[metric])
        assert torch.equal(once[metric], organism_results["fast"]["struct_reader"]["examples"][metric])
    # several batches and small suffix chunks give the same numbers
    small = stage_scores(parts, data, "struct_reader", receivers, method="fast", batch_size=16, max_rows=5)
    for metric in ("prob", "logit"):
        torch.testing.assert_close(small[metric], once[metric], rtol=0, atol=ATOL)  # per example


def test_path_patching_without_shared_clean_runs(organism, organism_results):
    parts, data = organism["parts"], organism["data"]
    shared = path_patching(parts, data, TOPK, method="fast", selection=NO_GUARD)
    alone = path_patching(parts, data, TOPK, method="fast", share_clean_runs=False, selection=NO_GUARD)
    for prev, stage in itertools.pairwise(STAGES):  # the chain: each stage's receivers are the previous top heads
        assert shared[stage]["receivers"] == shared[prev]["top"]
    for stage in STAGES:
        assert alone[stage]["top"] == shared[stage]["top"]
        for metric in ("prob", "logit"):
            assert torch.equal(alone[stage]["examples"][metric], shared[stage]["examples"][metric])


def test_the_noise_guard_stops_the_organisms_chain_at_the_position_transmitter(organism):
    """The shipped organism has no position transmitter: the stage's scores are noise (or positive),
    so with the default guard it has no signal and the later stages are not run."""
    res = path_patching(organism["parts"], organism["data"], TOPK, selection=DEFAULT_SELECTION)
    assert res["value_fetcher"]["status"] == "signal" and res["value_fetcher"]["top"][0] == (2, 0)
    assert res["pos_transmitter"]["status"] == "no signal" and res["pos_transmitter"]["top"] == []
    assert [res[s]["status"] for s in STAGES[2:]] == ["not run", "not run"]
    assert res["pos_detector"]["examples"] is None


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_a_null_patch_scores_zero(organism, method):
    """Null patch: the counterfactual is the clean prompt itself, so every sender is patched with its own clean
    output, the receivers with their own clean inputs: every score is 0 to float precision."""
    clean = organism["data"].clean
    null = PathPatchingData(clean, clean, clean.prev_query_label)
    receivers = {"value_fetcher": [], "pos_transmitter": [(2, 1), (2, 3)], "pos_detector": [(2, 0), (1, 2)],
                 "struct_reader": [(1, 2)]}  # fmt: skip
    for stage in STAGES:
        scores = stage_scores(organism["parts"], null, stage, receivers[stage], method=method, batch_size=20)
        for metric in ("prob", "logit"):
            assert scores[metric].shape == (40, 4, 8)
            assert scores[metric].abs().max() < 1e-5, (stage, metric, float(scores[metric].abs().max()))


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
    fast = {m: x.double().mean(0).float() for m, x in fast.items()}
    ref = {m: x.double().mean(0).float() for m, x in ref.items()}
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
