"""Attention knockout (entity_tracking.knockout): suffix runs against full forwards and hand computations."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from entity_tracking.interventions import ModelParts
from entity_tracking.io import read_json
from entity_tracking.knockout import (
    CONDITIONS,
    condition_positions,
    knockout_curves,
    knockout_logits,
    random_positions,
    run_knockout,
    write_knockout_table,
)
from entity_tracking.model_specs import model_source
from entity_tracking.partial_forward import clean_run
from entity_tracking.tokenization import check_vocabulary, encode_records
from entity_tracking.toy import build_model
from tests.test_interventions import sharpen

MODELS = {
    "llama-mha": dict(arch="llama", tokenizer="bos_tokenizer", heads=4, kv_heads=4, seed=1),
    "llama-gqa": dict(arch="llama", tokenizer="bos_tokenizer", heads=4, kv_heads=2, seed=2),
    "qwen2-gqa": dict(arch="qwen2", tokenizer="nobos_tokenizer", heads=4, kv_heads=2, seed=3),
}


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request, objects, small_data) -> dict[str, Any]:
    spec = dict(MODELS[request.param])
    tok = request.getfixturevalue(spec.pop("tokenizer"))
    model = sharpen(build_model(tok, layers=3, hidden=64, intermediate=96, **spec), scale=4.0)
    enc = encode_records(tok, small_data["eval"][:6], check_vocabulary(tok, objects))
    return {"name": request.param, "parts": ModelParts.of(model), "enc": enc, "tok": tok}


def reference_knockout(parts: ModelParts, ids, from_pos, to_pos, start_layer: int) -> torch.Tensor:
    """A full forward of the whole model in which every self-attention of layers >= start_layer gets the
    causal mask with (from, to) set to the dtype's minimum: the definition, independent of suffix runs."""
    b, t = ids.shape

    def hook(_module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None:  # sdpa without padding: the model leaves the causal mask implicit
            causal = torch.ones(t, t, dtype=torch.bool).tril()
            mask = torch.zeros(t, t).masked_fill(~causal, torch.finfo(torch.float32).min)[None, None]
        elif mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
        mask = mask.expand(b, 1, t, t).clone()
        mask[torch.arange(b), 0, from_pos, to_pos] = torch.finfo(torch.float32).min
        kwargs["attention_mask"] = mask
        return args, kwargs

    handles = [
        parts.layers[i].self_attn.register_forward_pre_hook(hook, with_kwargs=True)
        for i in range(start_layer, parts.num_layers)
    ]
    try:
        with torch.no_grad():
            return parts.model(input_ids=ids).logits[:, -1]
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_knockout_equals_a_full_forward_with_the_blocked_mask(setup, attn):
    parts, enc = setup["parts"], setup["enc"]
    parts.model.set_attn_implementation(attn)
    try:
        clean = clean_run(parts, enc.input_ids)
        changed = 0
        for cond in CONDITIONS:
            from_pos, to_pos = condition_positions(enc, cond, seed=3)
            for s in range(parts.num_layers):
                with torch.no_grad():
                    fast = knockout_logits(parts, clean, from_pos, to_pos, s)
                ref = reference_knockout(parts, enc.input_ids, from_pos, to_pos, s)
                torch.testing.assert_close(fast, ref, rtol=0, atol=2e-5, msg=f"{cond} s={s}")
                changed += int(not torch.allclose(ref, clean.logits, atol=1e-4))
        assert changed >= 10  # the knockouts do something
    finally:
        parts.model.set_attn_implementation("sdpa")


def test_knocking_out_no_position_changes_nothing(setup):
    parts, enc = setup["parts"], setup["enc"]
    clean = clean_run(parts, enc.input_ids)
    for from_field in ("last", "query_label"):
        from_pos = getattr(enc, from_field)
        nothing = torch.empty(len(enc), 0, dtype=torch.long)
        for s in range(parts.num_layers):
            with torch.no_grad():
                out = knockout_logits(parts, clean, from_pos, nothing, s)
            torch.testing.assert_close(out, clean.logits, rtol=0, atol=1e-5)


def test_knockout_of_everything_from_layer_0_matches_a_hand_computation(bos_tokenizer, objects, small_data):
    """One layer, every key but the last token itself blocked: the last token attends to itself alone, so
    its attention output is o_proj(v_last), and the logits follow by hand through the MLP and the head."""
    model = sharpen(build_model(bos_tokenizer, layers=1, hidden=32, heads=2, kv_heads=2, intermediate=48, seed=7))
    parts = ModelParts.of(model)
    enc = encode_records(bos_tokenizer, small_data["eval"][:4], check_vocabulary(bos_tokenizer, objects))
    b, t = enc.input_ids.shape
    clean = clean_run(parts, enc.input_ids)
    everything = torch.arange(t - 1).expand(b, -1)
    with torch.no_grad():
        out = knockout_logits(parts, clean, enc.last, everything, 0)
        layer, inner = model.model.layers[0], model.model
        x = inner.embed_tokens(enc.input_ids[:, -1])
        attn = layer.self_attn.o_proj(layer.self_attn.v_proj(layer.input_layernorm(x)))
        x = x + attn
        x = x + layer.mlp(layer.post_attention_layernorm(x))
        want = model.lm_head(inner.norm(x))
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)
    assert not torch.allclose(out, clean.logits, atol=1e-3)


def test_one_blocked_key_matches_a_hand_computed_softmax(bos_tokenizer, objects, small_data):
    """One layer, last -> query label blocked: the last token's attention recomputed by hand (rotary
    embedding, scaled scores, the key removed from the softmax, weighted values, o_proj, MLP, head)."""
    model = sharpen(build_model(bos_tokenizer, layers=1, hidden=32, heads=2, kv_heads=2, intermediate=48, seed=8))
    parts = ModelParts.of(model)
    enc = encode_records(bos_tokenizer, small_data["eval"][:4], check_vocabulary(bos_tokenizer, objects))
    b, t = enc.input_ids.shape
    d = parts.head_dim
    clean = clean_run(parts, enc.input_ids)
    with torch.no_grad():
        out = knockout_logits(parts, clean, enc.last, enc.query_label, 0)
        layer, inner = model.model.layers[0], model.model
        x = inner.embed_tokens(enc.input_ids)
        h = layer.input_layernorm(x)
        q = layer.self_attn.q_proj(h).view(b, t, 2, d)
        k = layer.self_attn.k_proj(h).view(b, t, 2, d)
        v = layer.self_attn.v_proj(h).view(b, t, 2, d)
        cos, sin = inner.rotary_emb(x, position_ids=torch.arange(t)[None])  # [1, T, d]

        def rotate(u: torch.Tensor) -> torch.Tensor:
            half = torch.cat([-u[..., d // 2 :], u[..., : d // 2]], dim=-1)
            return u * cos[:, :, None] + half * sin[:, :, None]

        q, k = rotate(q), rotate(k)
        z = torch.zeros(b, 2, d)
        for i in range(b):
            for head in range(2):
                scores = k[i, :, head] @ q[i, t - 1, head] / math.sqrt(d)  # [T]; the last token sees all keys
                keep = torch.ones(t, dtype=torch.bool)
                keep[enc.query_label[i]] = False
                weights = torch.softmax(scores[keep], dim=0)
                z[i, head] = weights @ v[i, keep, head]
        x_last = x[:, -1] + layer.self_attn.o_proj(z.view(b, 2 * d))
        x_last = x_last + layer.mlp(layer.post_attention_layernorm(x_last))
        want = model.lm_head(inner.norm(x_last))
    torch.testing.assert_close(out, want, rtol=0, atol=1e-4)
    assert not torch.allclose(out, clean.logits, atol=1e-3)


@pytest.mark.parametrize("tokenizer", ["bos_tokenizer", "nobos_tokenizer"])
def test_random_positions_avoid_position_0_the_answer_the_query_and_everything_after_it(
    request, tokenizer, objects, small_data
):
    """Random targets never hit position 0, the correct object, the query label's earlier occurrence, the query
    label, the "contains" token(s) or the last token; they precede ``from``, are seeded and spread out."""
    tok = request.getfixturevalue(tokenizer)
    enc = encode_records(tok, small_data["eval"], check_vocabulary(tok, objects))
    assert (enc.prev_query_label >= 1).any() and (enc.correct_object >= 1).all()  # the exclusions are real
    assert (enc.query_label < enc.last - 1).all()  # " contains" lies between the query label and the last token
    for before in ("last", "query_label"):
        pos = random_positions(enc, before, "seed/1")
        assert len(pos) == len(enc) == 70
        assert (pos >= 1).all() and (pos < getattr(enc, before)).all()
        assert (pos < enc.query_label).all()  # not the query label, " contains" or the last token
        assert (pos != enc.correct_object).all()
        assert (pos != enc.prev_query_label).all()
        assert (pos != enc.last).all() and (pos != enc.query_label).all()
        assert torch.equal(pos, random_positions(enc, before, "seed/1"))  # seeded
        assert not torch.equal(pos, random_positions(enc, before, "seed/2"))
        assert len(set(pos.tolist())) > 20  # spread over the prompt, not degenerate
        for i in range(len(enc)):  # every draw of one prompt under many seeds: still more than one position
            draws = {int(random_positions(enc.select(slice(i, i + 1)), before, f"s/{k}")[0]) for k in range(40)}
            assert len(draws) > 1
            assert not draws & {0, int(enc.correct_object[i]), int(enc.prev_query_label[i])}
            assert max(draws) < int(enc.query_label[i])
    if tokenizer == "bos_tokenizer":
        assert (enc.input_ids[:, 0] == tok.bos_token_id).all()  # position 0 is BOS here
    _, a = condition_positions(enc, "last_to_random", 5)
    _, c = condition_positions(enc, "query_label_to_random", 5)
    assert not torch.equal(a, c)  # each random condition has its own draws
    for to in (a, c):
        assert (to >= 1).all() and (to < enc.query_label).all()
        assert (to != enc.correct_object).all() and (to != enc.prev_query_label).all()
    frm, to = condition_positions(enc, "query_label_to_prev_query_label", 5)
    assert torch.equal(frm, enc.query_label) and torch.equal(to, enc.prev_query_label)


def test_batching_does_not_change_the_curves(setup):
    parts, enc = setup["parts"], setup["enc"]
    positions = {c: condition_positions(enc, c, 1) for c in ("last_to_random", "query_label_to_prev_query_label")}
    own1, curves1 = knockout_curves(parts, enc, positions, batch_size=6)
    own2, curves2 = knockout_curves(parts, enc, positions, batch_size=4)
    assert own1 == own2 and curves1 == curves2
    assert [row["start_layer"] for row in curves1["last_to_random"]] == [0, 1, 2]
    for row in [own1, *curves1["last_to_random"]]:  # per-record outcomes for paired tests, every start layer
        assert len(row["outcomes"]) == len(enc) and row["outcomes"].count("1") == row["correct"]


def _run(cfg: dict[str, Any], model: str, data: Path, out: Path) -> dict[str, Any]:
    """Rule knockout's call (scripts/knockout.py) on a study's config."""
    s = cfg["knockout"]
    confidence = cfg["evaluation"]["confidence"]
    return run_knockout(model_source(cfg, model), data, out, s["conditions"], s["seed"], s["batch_size"], confidence)


def test_run_knockout_writes_every_curve(toy_config, small_data, tmp_path):
    from entity_tracking.io import write_jsonl

    data = tmp_path / "eval.jsonl"
    write_jsonl(data, small_data["eval"][:21])
    files = []
    for model in toy_config["models"]:
        out = tmp_path / f"{model}.json"
        _run(toy_config, model, data, out)
        files.append(out)
        res = read_json(out)
        assert res["records"] == 21 and res["layers"] == 2 and res["attn_implementation"] == "sdpa"
        assert res["adds_bos"] is (model == "toy-llama")
        assert list(res["conditions"]) == list(CONDITIONS)
        for cond, entry in res["conditions"].items():
            assert len(entry["accuracy"]) == 2 and [r["start_layer"] for r in entry["curve"]] == [0, 1]
            assert ("random_positions" in entry) is cond.endswith("random")
        assert 0 <= res["no_knockout"]["accuracy"] <= 1
    first = files[0].read_bytes()
    _run(toy_config, "toy-llama", data, files[0])
    assert files[0].read_bytes() == first  # byte-reproducible
    write_knockout_table(files, tmp_path / "knockout.csv")
    rows = list(csv.DictReader((tmp_path / "knockout.csv").open()))
    assert len(rows) == 2 * 5 * 2
    assert rows[0]["model"] == "toy-llama" and rows[0]["condition"] == "last_to_correct_object"
    assert rows[0]["start_layer"] == "0" and rows[1]["start_layer"] == "1"
