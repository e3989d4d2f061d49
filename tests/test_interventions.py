"""Per-head reads and writes (entity_tracking.interventions) and partial forwards (entity_tracking.partial_forward).

Every test runs on four tiny models: Llama with one kv head per query head, Llama with grouped-query
attention, Mistral (all query heads share one kv head) and Qwen2 (q/k/v biases, grouped-query
attention, no BOS token).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from entity_tracking.interventions import (
    ModelParts,
    UnsupportedModelError,
    capture,
    chain,
    gather_positions,
    intervene,
    kv_head,
    mix,
    patch,
    replace_where,
)
from entity_tracking.partial_forward import clean_run, patched_logits, run_suffix
from entity_tracking.tokenization import check_vocabulary, encode_records
from entity_tracking.toy import build_model

MODELS = {
    "llama-mha": dict(arch="llama", tokenizer="bos_tokenizer", heads=4, kv_heads=4, seed=1),
    "llama-gqa": dict(arch="llama", tokenizer="bos_tokenizer", heads=4, kv_heads=2, seed=2),
    "mistral-gqa": dict(arch="mistral", tokenizer="bos_tokenizer", heads=4, kv_heads=1, seed=4),
    "qwen2-gqa": dict(arch="qwen2", tokenizer="nobos_tokenizer", heads=4, kv_heads=2, seed=3),
}


def sharpen(model: Any, scale: float = 8.0, seed: int = 0) -> Any:
    """Scale the random weights up (so every intervention has a visible effect) and give every
    Linear bias (Qwen2's q/k/v) random non-zero values, so biases are part of what is tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif "norm" not in name:
                p.mul_(scale)
    return model


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request, objects, small_data) -> dict[str, Any]:
    spec = dict(MODELS[request.param])
    tok = request.getfixturevalue(spec.pop("tokenizer"))
    model = sharpen(build_model(tok, layers=3, hidden=64, intermediate=96, **spec))
    vocab = check_vocabulary(tok, objects)
    enc = encode_records(tok, small_data["discovery"][:5], vocab)
    parts = ModelParts.of(model)
    with torch.no_grad():
        logits = model(input_ids=enc.input_ids).logits
    return {"name": request.param, "parts": parts, "ids": enc.input_ids, "enc": enc, "logits": logits}


def _no_hooks(parts: ModelParts) -> bool:
    mods = [parts.module(site, layer) for site in ("z", "q", "k", "v") for layer in range(parts.num_layers)]
    return all(not m._forward_pre_hooks and not m._forward_hooks for m in mods)


def test_model_parts_geometry(setup):
    parts = setup["parts"]
    spec = MODELS[setup["name"]]
    assert (parts.num_layers, parts.heads, parts.kv_heads, parts.head_dim) == (3, 4, spec["kv_heads"], 16)
    assert parts.site_heads("z") == parts.site_heads("q") == 4
    assert parts.site_heads("k") == parts.site_heads("v") == spec["kv_heads"]
    expected = {4: [0, 1, 2, 3], 2: [0, 0, 1, 1], 1: [0, 0, 0, 0]}[spec["kv_heads"]]
    assert [kv_head(parts, h) for h in range(4)] == expected
    if spec["arch"] == "qwen2":
        assert parts.module("q", 0).bias is not None and parts.module("v", 2).bias.abs().sum() > 0


def test_model_parts_rejects_other_layouts():
    with pytest.raises(UnsupportedModelError, match="Llama/Mistral/Qwen2"):
        ModelParts.of(torch.nn.Linear(2, 2))


def test_captured_z_through_o_proj_is_the_attention_output(setup):
    parts, ids = setup["parts"], setup["ids"]
    store: dict[Any, torch.Tensor] = {}
    attn: dict[int, torch.Tensor] = {}
    handles = [
        layer.self_attn.register_forward_hook(lambda _m, _a, out, i=i: attn.__setitem__(i, out[0].detach()))
        for i, layer in enumerate(parts.layers)
    ]
    try:
        with torch.no_grad(), intervene(parts, {("z", i): capture(store, i) for i in range(parts.num_layers)}):
            logits = parts.model(input_ids=ids).logits
    finally:
        for h in handles:
            h.remove()
    assert torch.equal(logits, setup["logits"])  # reading changes nothing
    for i in range(parts.num_layers):
        z = store[i]
        assert z.shape == (*ids.shape, parts.heads, parts.head_dim)
        with torch.no_grad():
            out = parts.module("z", i)(z.flatten(-2))
        torch.testing.assert_close(out, attn[i], rtol=0, atol=1e-6)
    # the per-head view of q/k/v is the projection output, biases included
    store2: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {(s, 1): capture(store2, s) for s in ("q", "k", "v")}):
        parts.model(input_ids=ids)
    # the input of layer 1's projections is its input layernorm of layer 1's input
    cr = clean_run(parts, ids)
    normed = parts.layers[1].input_layernorm(cr.resid[1])
    for site in ("q", "k", "v"):
        with torch.no_grad():
            want = parts.module(site, 1)(normed).view(*ids.shape, parts.site_heads(site), parts.head_dim)
        torch.testing.assert_close(store2[site], want, rtol=0, atol=1e-6)


def test_patching_a_head_with_its_own_value_is_bit_identical(setup):
    parts, ids = setup["parts"], setup["ids"]
    b = ids.shape[0]
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {("z", 1): capture(store, "z"), ("v", 0): capture(store, "v")}):
        parts.model(input_ids=ids)
    positions = torch.tensor([3, 10, 20, 30, ids.shape[1] - 1])[:b]
    rows = torch.arange(b)
    heads = torch.tensor([1, 3])
    edits = {
        ("z", 1): patch(positions, heads, store["z"][rows, positions][:, heads]),
        ("v", 0): patch(positions, torch.tensor([parts.kv_heads - 1]), store["v"][rows, positions][:, [-1]]),
    }
    with torch.no_grad(), intervene(parts, edits):
        logits = parts.model(input_ids=ids).logits
    assert torch.equal(logits, setup["logits"])


@pytest.mark.parametrize("layer", [0, 2])
def test_zeroing_one_head_changes_only_later_positions(setup, layer):
    parts, ids = setup["parts"], setup["ids"]
    b = ids.shape[0]
    p = 20
    edit = patch(torch.full((b,), p), torch.tensor([2]), torch.zeros(b, 1, parts.head_dim))
    with torch.no_grad(), intervene(parts, {("z", layer): edit}):
        logits = parts.model(input_ids=ids).logits
    clean = setup["logits"]
    assert torch.equal(logits[:, :p], clean[:, :p])
    changed = (logits != clean).any(-1)  # [B, T]
    assert changed[:, p].all()
    if layer < parts.num_layers - 1:
        assert changed[:, p:].all()  # later layers carry the change to every later position
    else:
        assert not changed[:, p + 1 :].any()  # in the last layer it stays at p


@pytest.mark.parametrize("site", ["z", "q", "k", "v"])
def test_patch_writes_exactly_the_given_slots(setup, site):
    parts, ids = setup["parts"], setup["ids"]
    b, t = ids.shape
    layer = 1
    n_heads = parts.site_heads(site)
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {(site, layer): capture(store, "clean")}):
        parts.model(input_ids=ids)
    positions = torch.tensor([0, 7, 19, 33, t - 1])[:b]
    heads = torch.tensor(sorted({n_heads - 1, 0}, reverse=True))  # one head where all query heads share a kv head
    values = torch.randn(b, len(heads), parts.head_dim, generator=torch.Generator().manual_seed(5))
    edit = chain(capture(store, "before"), patch(positions, heads, values), capture(store, "after"))
    with torch.no_grad(), intervene(parts, {(site, layer): edit}):
        parts.model(input_ids=ids)
    assert torch.equal(store["before"], store["clean"])  # the site's own input is not affected by its edit
    want = store["clean"].clone()
    for i in range(b):
        for j, h in enumerate(heads.tolist()):
            want[i, positions[i], h] = values[i, j]
    assert torch.equal(store["after"], want)
    written = torch.zeros(b, t, n_heads, dtype=torch.bool)
    written[torch.arange(b)[:, None], positions[:, None], heads[None, :]] = True
    assert (store["after"] != store["clean"]).any(-1).eq(written).all()
    # gather_positions reads the same slots back
    torch.testing.assert_close(gather_positions(store["after"], positions)[:, 0, heads], values, rtol=0, atol=0)


def test_capture_at_positions(setup):
    parts, ids = setup["parts"], setup["ids"]
    b = ids.shape[0]
    full: dict[Any, torch.Tensor] = {}
    at: dict[Any, torch.Tensor] = {}
    pos = torch.stack([torch.arange(b), torch.arange(b) + 10], dim=1)  # [B, 2]
    with torch.no_grad(), intervene(parts, {("z", 2): chain(capture(full, 0), capture(at, 0, pos))}):
        parts.model(input_ids=ids)
    assert at[0].shape == (b, 2, parts.heads, parts.head_dim)
    for i in range(b):
        assert torch.equal(at[0][i, 0], full[0][i, i]) and torch.equal(at[0][i, 1], full[0][i, i + 10])


def test_v_edit_of_a_kv_head_reaches_every_query_head_sharing_it(setup):
    parts, ids = setup["parts"], setup["ids"]
    b = ids.shape[0]
    layer, p = 1, 15
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {("z", layer): capture(store, "clean")}):
        parts.model(input_ids=ids)
    kv = parts.kv_heads - 1  # the last kv head
    edit = patch(torch.full((b,), p), torch.tensor([kv]), torch.full((b, 1, parts.head_dim), 3.0))
    with torch.no_grad(), intervene(parts, {("v", layer): edit, ("z", layer): capture(store, "edited")}):
        parts.model(input_ids=ids)
    changed = (store["edited"] != store["clean"]).any(-1)  # [B, T, heads]
    sharing = [h for h in range(parts.heads) if kv_head(parts, h) == kv]
    assert len(sharing) == parts.heads // parts.kv_heads
    assert not changed[:, :p].any()  # earlier queries cannot attend to position p
    for h in range(parts.heads):
        if h in sharing:
            assert changed[:, p:, h].all(), h
        else:
            assert not changed[:, :, h].any(), h


def test_replace_where_mask_and_source(setup):
    parts, ids = setup["parts"], setup["ids"]
    b, t = ids.shape
    source = torch.randn(1, t + 4, parts.heads, parts.head_dim, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(b, t + 4, parts.heads, dtype=torch.bool)
    mask[0, 5, 1] = mask[2, t - 1, 3] = True
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {("z", 0): chain(capture(store, 0), replace_where(mask, source))}):
        parts.model(input_ids=ids)
    with torch.no_grad(), intervene(parts, {("z", 0): chain(replace_where(mask, source), capture(store, 1))}):
        parts.model(input_ids=ids)
    want = store[0].clone()
    want[0, 5, 1] = source[0, 5, 1]
    want[2, t - 1, 3] = source[0, t - 1, 3]
    assert torch.equal(store[1], want)


def test_run_suffix_reproduces_the_full_forward(setup):
    parts, ids = setup["parts"], setup["ids"]
    clean = setup["logits"]
    cr = clean_run(parts, ids)
    t = ids.shape[1]
    torch.testing.assert_close(cr.logits, clean[:, -1], rtol=0, atol=1e-5)
    assert len(cr.resid) == len(cr.keys) == len(cr.values) == len(cr.z) == parts.num_layers
    assert cr.keys[0].shape == (ids.shape[0], parts.kv_heads, t, parts.head_dim)
    for start, first in [(0, 0), (1, 0), (20, 0), (20, 1), (37, 2), (t - 1, 1), (t - 1, 2), (0, 2)]:
        with torch.no_grad():
            normed = run_suffix(parts, cr.resid[first][:, start:], start, first, cr.keys, cr.values)
            logits = parts.model.lm_head(normed)
        assert logits.shape == (ids.shape[0], t - start, clean.shape[-1])
        torch.testing.assert_close(logits, clean[:, start:], rtol=0, atol=1e-5, msg=f"start={start} layer={first}")


def test_run_suffix_applies_hooks_like_the_full_forward(setup):
    """An edit inside a suffix run gives the logits of the same edit in a full forward."""
    parts, ids = setup["parts"], setup["ids"]
    b = ids.shape[0]
    start, first, p = 25, 1, 30
    edit = patch(torch.full((b,), p), torch.tensor([0]), torch.full((b, 1, parts.head_dim), -2.0))
    with torch.no_grad(), intervene(parts, {("q", 2): edit}):
        full = parts.model(input_ids=ids).logits
    cr = clean_run(parts, ids)
    shifted = patch(torch.full((b,), p - start), torch.tensor([0]), torch.full((b, 1, parts.head_dim), -2.0))
    with torch.no_grad(), intervene(parts, {("q", 2): shifted}):
        normed = run_suffix(parts, cr.resid[first][:, start:], start, first, cr.keys, cr.values)
        logits = parts.model.lm_head(normed)
    assert not torch.allclose(full, setup["logits"])
    torch.testing.assert_close(logits, full[:, start:], rtol=0, atol=1e-5)


def test_hooks_are_removed_after_the_block(setup):
    parts, ids = setup["parts"], setup["ids"]
    b = ids.shape[0]
    edits = {
        (site, layer): patch(torch.zeros(b, dtype=torch.long), torch.tensor([0]), torch.ones(b, 1, parts.head_dim))
        for site in ("z", "q", "k", "v")
        for layer in range(parts.num_layers)
    }
    with intervene(parts, edits):
        assert not _no_hooks(parts)
    assert _no_hooks(parts)
    with pytest.raises(RuntimeError, match="boom"), intervene(parts, edits):
        raise RuntimeError("boom")
    assert _no_hooks(parts)
    with pytest.raises(ValueError, match="unknown site"), intervene(parts, {("z", 0): capture({}, 0), ("x", 0): None}):
        pass
    assert _no_hooks(parts)  # the hooks registered before the bad key are removed too
    with torch.no_grad():
        assert torch.equal(parts.model(input_ids=ids).logits, setup["logits"])
    clean_run(parts, ids)
    layer_hooks = [m for layer in parts.layers for m in (layer, layer.self_attn.o_proj) if m._forward_pre_hooks]
    assert not layer_hooks and _no_hooks(parts)


def test_mix_interpolates_between_the_head_and_the_source(setup):
    parts, ids = setup["parts"], setup["ids"]
    b, t = ids.shape
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {("z", 1): capture(store, "clean")}):
        parts.model(input_ids=ids)
    positions = torch.tensor([4, 9, 20, t - 1, t - 3])[:b]
    heads = torch.tensor([2, 0])
    values = torch.randn(b, 2, parts.head_dim, generator=torch.Generator().manual_seed(1))
    keep = torch.tensor([0.25, 1.0])
    with (
        torch.no_grad(),
        intervene(parts, {("z", 1): chain(mix(positions, heads, values, keep), capture(store, "out"))}),
    ):
        parts.model(input_ids=ids)
    want = store["clean"].clone()
    rows = torch.arange(b)
    want[rows, positions, 2] = 0.25 * want[rows, positions, 2] + 0.75 * values[:, 0]
    torch.testing.assert_close(store["out"], want, rtol=0, atol=1e-6)  # head 0 kept (keep = 1)
    assert torch.equal(store["out"][:, :, [1, 3]], store["clean"][:, :, [1, 3]])


def _mask_edits(parts: ModelParts, positions: torch.Tensor, offset: torch.Tensor | int, keep: torch.Tensor) -> dict:
    """A DCM-like edit: heads (1, 1) and (2, 3) mixed with constant sources at per-row positions."""
    b = positions.shape[0]
    src = torch.linspace(-1, 1, parts.head_dim).expand(b, 1, -1)
    return {
        ("z", 1): mix(positions - offset, torch.tensor([1]), src, keep[:1]),
        ("z", 2): mix(positions - offset, torch.tensor([3]), 2 * src, keep[1:]),
    }


def test_patched_logits_equal_the_full_forward_with_the_same_edits(setup):
    """The suffix engine (grouped by start position, from the first edited layer) reproduces full forwards,
    their logits and their gradients with respect to the edit's parameters."""
    parts, ids = setup["parts"], setup["ids"]
    b, t = ids.shape
    cr = clean_run(parts, ids)
    none = patched_logits(parts, cr, torch.full((b,), t - 1), 1, lambda rows, s: {})
    torch.testing.assert_close(none, setup["logits"][:, -1], rtol=0, atol=1e-5)
    positions = torch.tensor([t - 1, 12, 30, 12, t - 3])[:b]  # rows share or differ in their start
    keep_full = torch.tensor([0.3, 0.6], requires_grad=True)
    with intervene(parts, _mask_edits(parts, positions, 0, keep_full)):
        full = parts.model(input_ids=ids).logits[:, -1]
    keep_fast = torch.tensor([0.3, 0.6], requires_grad=True)
    fast = patched_logits(parts, cr, positions, 1, lambda rows, s: _mask_edits(parts, positions[rows], s, keep_fast))
    assert not torch.allclose(full, setup["logits"][:, -1], atol=1e-3)  # the edit matters
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-5)
    full.sum().backward()
    fast.sum().backward()
    assert keep_full.grad.abs().sum() > 0
    torch.testing.assert_close(keep_fast.grad, keep_full.grad, rtol=1e-4, atol=1e-5)
