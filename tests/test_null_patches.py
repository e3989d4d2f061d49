"""Null patches: patching a model with its own clean activations reproduces its clean logits to float precision.

One test per patching method (mean ablation, DCM, activation patching, CMAP output patching, attention
knockout), each on a Llama toy (BOS, one key/value head per query head) and a Qwen2 toy (no BOS, grouped-query
attention, q/k/v biases), with weights sharpened so that the logits are far from flat. Each test also checks
that a real patch of the same kind moves the logits, so the comparison could fail.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from entity_tracking.ablation import Ablator, mean_z
from entity_tracking.circuits import GROUPS, POSITIONS, full_model_keep
from entity_tracking.cmap import capture_source, cmap_logits, needed_slots, output_patches
from entity_tracking.dcm import BaseRuns, PairSet, accuracy_with, outcomes_with, patched_group_logits
from entity_tracking.interventions import ModelParts
from entity_tracking.knockout import knockout_logits
from entity_tracking.partial_forward import clean_run
from entity_tracking.tokenization import Encoded, check_vocabulary, encode_records
from entity_tracking.toy import build_model
from tests.test_interventions import sharpen

ATOL = 1e-5  # float32
MOVED = 1e-2  # a real patch moves some logit by more than this
LAYERS, HEADS = 3, 4
MODELS = {
    "llama": dict(arch="llama", tokenizer="bos_tokenizer", kv_heads=4, seed=21),
    "qwen2-gqa": dict(arch="qwen2", tokenizer="nobos_tokenizer", kv_heads=2, seed=22),
}
# a head group per position class, spanning every layer
GROUP_HEADS: dict[str, list[tuple[int, int]]] = {
    "last": [(0, 3), (1, 0), (2, 3), (2, 1)],
    "query_label": [(0, 2), (1, 1), (2, 0)],
    "prev_query_label": [(0, 1), (1, 3), (2, 2)],
}
CIRCUIT: dict[str, list[tuple[int, int]]] = {
    "value_fetcher": [(2, 1), (1, 3)],
    "pos_transmitter": [(2, 0), (1, 3)],
    "pos_detector": [(1, 2), (0, 1)],
    "struct_reader": [(0, 0), (0, 3)],
}


@pytest.fixture(scope="module", params=list(MODELS))
def toy(request, objects, small_data) -> dict[str, Any]:
    """A sharpened 3-layer toy, six prompts of one length and the plain model's last-token logits."""
    spec = dict(MODELS[request.param])
    tok = request.getfixturevalue(spec.pop("tokenizer"))
    model = build_model(tok, layers=LAYERS, hidden=64, heads=HEADS, intermediate=96, **spec)
    parts = ModelParts.of(sharpen(model, scale=6.0))
    enc = encode_records(tok, small_data["eval"][:6], check_vocabulary(tok, objects))
    assert len(set(enc.attention_mask.sum(1).tolist())) == 1
    with torch.no_grad():
        plain = parts.model(input_ids=enc.input_ids).logits[:, -1]
    # sharp logits that depend on the prompt: a match to float precision is a meaningful check
    assert plain.std(-1).min() > 0.3 and _moved(plain[1:], plain[:1])
    return {"parts": parts, "enc": enc, "plain": plain}


def _moved(got: torch.Tensor, clean: torch.Tensor) -> bool:
    return bool((got - clean).abs().max() > MOVED)


def _rolled(enc: Encoded) -> torch.Tensor:
    """Every prompt paired with the next one (another context or query)."""
    return torch.roll(torch.arange(len(enc)), 1)


def test_mean_ablation_with_a_prompts_own_means_is_the_clean_model(toy):
    """Null patch: the mean reference is the mean ``z`` of a batch of identical prompts, i.e. the prompt's own
    clean ``z``; replacing heads by it (context ablation with every head kept at the three positions, or none
    kept; no context ablation with none kept or every head kept) changes nothing."""
    parts, enc, plain = toy["parts"], toy["enc"], toy["plain"]
    every, nothing = full_model_keep(LAYERS, HEADS), {p: set() for p in POSITIONS}
    for i in range(2):
        same = enc.select(torch.full((3,), i))
        own = mean_z(parts, same, batch_size=2)
        ablator = Ablator(parts, same, own, batch_size=2)  # two batches
        want = plain[[i] * 3]
        torch.testing.assert_close(ablator.logits(None), want, rtol=0, atol=ATOL)
        for keep in (every, nothing):
            for context in (True, False):
                got = ablator.logits(keep, context)
                torch.testing.assert_close(got, want, rtol=0, atol=ATOL, msg=f"prompt {i} context={context}")
        other = mean_z(parts, enc.select(torch.full((1,), i + 1)), batch_size=1)  # another prompt's z
        assert _moved(Ablator(parts, same, other, batch_size=2).logits(nothing, True), want)


@pytest.mark.parametrize("position", list(GROUP_HEADS))
def test_dcm_with_the_base_prompts_as_sources_is_the_clean_model(toy, position):
    """Null patch: a DCM group whose source prompts are the base prompts themselves (their ``z`` from a forward
    over the sources): mixing base and source by any mask (0, 1, 0.5, mixed) gives the clean logits."""
    parts, enc, plain = toy["parts"], toy["enc"], toy["plain"]
    heads = GROUP_HEADS[position]
    pairs = PairSet(enc, enc, enc.answer_ids, [])
    runs = BaseRuns(parts, enc, batch_size=4, keep=True)
    src = runs.sources(pairs, [position])[position]
    positions, rows = getattr(enc, position), torch.arange(len(enc))
    masks = [torch.full((len(heads),), m) for m in (0.0, 1.0, 0.5)] + [torch.linspace(0, 1, len(heads))]
    floor = outcomes_with(parts, runs, pairs, [], torch.ones(0), position, src)
    with torch.no_grad():
        for keep in masks:
            got = patched_group_logits(parts, runs, rows, heads, keep, positions, src)
            torch.testing.assert_close(got, plain, rtol=0, atol=ATOL, msg=f"mask {keep.tolist()}")
            assert torch.equal(outcomes_with(parts, runs, pairs, heads, keep, position, src), floor)
        other = runs.sources(PairSet(enc, enc.select(_rolled(enc)), enc.answer_ids, []), [position])[position]
        moved = patched_group_logits(parts, runs, rows, heads, torch.zeros(len(heads)), positions, other)
    assert _moved(moved, plain)


def test_activation_patching_from_the_base_prompt_itself_is_the_clean_model(toy):
    """Null patch: activation patching's heads patched fully (mask 0, as ``run_activation_patching`` scores them
    with :func:`entity_tracking.dcm.accuracy_with`) from the base prompt itself, the source ``z`` looked up in
    the split's clean runs (the sources are records of the split: every record is its own source)."""
    parts, enc, plain = toy["parts"], toy["enc"], toy["plain"]
    rows = torch.arange(len(enc))
    pairs = PairSet(enc, enc, enc.answer_ids, [], source_rows=rows)
    runs = BaseRuns(parts, enc, batch_size=4, keep=False)  # clean runs recomputed per batch
    src = runs.sources(pairs, list(POSITIONS))
    floor = outcomes_with(parts, runs, pairs, [], torch.ones(0), "last", [])
    for position, heads in GROUP_HEADS.items():
        keep = torch.zeros(len(heads))
        with torch.no_grad():
            got = patched_group_logits(parts, runs, rows, heads, keep, getattr(enc, position), src[position])
        torch.testing.assert_close(got, plain, rtol=0, atol=ATOL, msg=position)
        assert torch.equal(outcomes_with(parts, runs, pairs, heads, keep, position, src[position]), floor)
        assert accuracy_with(parts, runs, pairs, heads, keep, position, src[position]) == floor.float().mean().item()
    shifted = runs.sources(PairSet(enc, enc, enc.answer_ids, [], source_rows=_rolled(enc)), ["last"])["last"]
    heads = GROUP_HEADS["last"]
    with torch.no_grad():
        moved = patched_group_logits(parts, runs, rows, heads, torch.zeros(len(heads)), enc.last, shifted)
    assert _moved(moved, plain)


@pytest.mark.parametrize("group", [*GROUPS, "full_circuit"])
def test_cmap_output_patching_a_model_into_itself_is_the_clean_model(toy, group):
    """Null patch: CMAP output patching with the target as its own source on the same prompts: the model's own
    ``z`` of the group's heads (or the full circuit's) at the group's position replaces its ``z``."""
    parts, enc, plain = toy["parts"], toy["enc"], toy["plain"]
    groups = CIRCUIT if group == "full_circuit" else {group: CIRCUIT[group]}
    patches = output_patches(groups)
    slots = needed_slots({group: patches})
    acts, source_logits = capture_source(parts, enc, slots)
    clean = clean_run(parts, enc.input_ids)
    got = cmap_logits(parts, enc, clean, patches, acts, slots)
    torch.testing.assert_close(source_logits, plain, rtol=0, atol=ATOL)
    torch.testing.assert_close(got, plain, rtol=0, atol=ATOL)
    if group == "full_circuit":
        other, _ = capture_source(parts, enc.select(_rolled(enc)), slots)  # the next prompt's z
        assert _moved(cmap_logits(parts, enc, clean, patches, other, slots), plain)


def test_attention_knockout_blocking_no_visible_key_is_the_clean_model(toy):
    """Null patches: an empty target set (``[B, 0]``, no key blocked) from the last token and from the query
    label, at every start layer; and, from the query label, blocking every key after it (keys the causal mask
    already hides), at every start layer."""
    parts, enc, plain = toy["parts"], toy["enc"], toy["plain"]
    clean = clean_run(parts, enc.input_ids)
    nothing = torch.empty(len(enc), 0, dtype=torch.long)
    width = int((enc.last - enc.query_label).min())  # " contains" and the last token
    future = enc.query_label[:, None] + torch.arange(1, width + 1)  # [B, width]
    assert width >= 2 and torch.equal(future[:, -1], enc.last)
    with torch.no_grad():
        for s in range(LAYERS):
            for from_pos in (enc.last, enc.query_label):
                got = knockout_logits(parts, clean, from_pos, nothing, s)
                torch.testing.assert_close(got, plain, rtol=0, atol=ATOL, msg=f"nothing blocked, s={s}")
            got = knockout_logits(parts, clean, enc.query_label, future, s)
            torch.testing.assert_close(got, plain, rtol=0, atol=ATOL, msg=f"future keys blocked, s={s}")
        moved = knockout_logits(parts, clean, enc.last, enc.query_label, 0)
    assert _moved(moved, plain)
