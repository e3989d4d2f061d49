"""Cross-model activation patching (entity_tracking.cmap): hand-made full-forward references (output patching,
input patching in both modes), self-patching, head sets from circuits and DCM files, pair checks, the rule's
JSON and table."""

from __future__ import annotations

import csv
from typing import Any

import pytest
import torch

import entity_tracking.cmap as cmap_module
from entity_tracking.circuits import GROUPS, POSITION_OF, save_circuit
from entity_tracking.cmap import (
    CmapPairError,
    CmapSettings,
    Patch,
    capture_source,
    check_pair,
    cmap_logits,
    input_patches,
    needed_slots,
    output_patches,
    patch_edits,
    plans_for,
    resets,
    resolve_head_sets,
    run_cmap,
    write_cmap_table,
)
from entity_tracking.config import ConfigError, build_config, cmap_pairs
from entity_tracking.interventions import ModelParts, capture, intervene, kv_head, patch
from entity_tracking.io import read_json, write_json, write_jsonl
from entity_tracking.layout import circuit_name, head_set_files
from entity_tracking.model_specs import model_source
from entity_tracking.partial_forward import clean_run
from entity_tracking.tokenization import check_vocabulary, encode_records
from entity_tracking.toy import build_model
from tests.conftest import REPO
from tests.test_interventions import sharpen

CIRCUIT = {
    "value_fetcher": [(2, 1), (1, 3)],
    "pos_transmitter": [(2, 0), (1, 3)],  # (1, 3) in two groups at one position: patched once
    "pos_detector": [(1, 2), (0, 1)],
    "struct_reader": [(0, 0), (0, 3)],
}


PAIRS = {"llama-mha": ("llama", 4), "llama-gqa": ("llama", 2), "qwen2-gqa": ("qwen2", 2)}


@pytest.fixture(scope="module", params=list(PAIRS))
def pair(request, bos_tokenizer, objects, small_data) -> dict[str, Any]:
    """Two different 3-layer models sharing a tokenizer: Llama with one kv head per query head or grouped,
    Qwen2 (grouped, random q/k/v biases)."""
    arch, kv_heads = PAIRS[request.param]
    kw = dict(arch=arch, layers=3, hidden=64, intermediate=96, heads=4, kv_heads=kv_heads)
    src = ModelParts.of(sharpen(build_model(bos_tokenizer, seed=10, **kw), scale=4.0, seed=1))
    tgt = ModelParts.of(sharpen(build_model(bos_tokenizer, seed=11, **kw), scale=4.0, seed=2))
    enc = encode_records(bos_tokenizer, small_data["eval"][:6], check_vocabulary(bos_tokenizer, objects))
    return {"src": src, "tgt": tgt, "enc": enc}


def _full(parts: ModelParts, ids: torch.Tensor, edits: dict) -> torch.Tensor:
    with torch.no_grad(), intervene(parts, edits):
        return parts.model(input_ids=ids).logits[:, -1]


def _cmap(pair: dict[str, Any], patches: list[Patch], reset: bool = False) -> torch.Tensor:
    enc = pair["enc"]
    slots = needed_slots({"x": patches})
    acts, _ = capture_source(pair["src"], enc, slots)
    return cmap_logits(pair["tgt"], enc, clean_run(pair["tgt"], enc.input_ids), patches, acts, slots, reset=reset)


def _capture_full(parts: ModelParts, ids: torch.Tensor, site: str, layer: int) -> torch.Tensor:
    store: dict[Any, torch.Tensor] = {}
    with torch.no_grad(), intervene(parts, {(site, layer): capture(store, 0)}):
        parts.model(input_ids=ids)
    return store[0]


@pytest.mark.parametrize("group", GROUPS)
def test_output_patching_of_one_head_equals_a_hand_made_full_forward(pair, group):
    enc, src, tgt = pair["enc"], pair["src"], pair["tgt"]
    layer, head = CIRCUIT[group][0]
    z_src = _capture_full(src, enc.input_ids, "z", layer)  # [B, T, H, d]
    pos = getattr(enc, POSITION_OF[group])
    rows = torch.arange(len(enc))
    want = _full(tgt, enc.input_ids, {("z", layer): patch(pos, torch.tensor([head]), z_src[rows, pos][:, [head]])})
    got = _cmap(pair, output_patches({group: [(layer, head)]}))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert not torch.allclose(want, clean_run(tgt, enc.input_ids).logits, atol=1e-4)  # the patch matters


def _reset_edits(parts: ModelParts, ids: torch.Tensor) -> dict:
    """Every head's z at every position before the last token set to the model's own clean z, in every layer."""
    last = ids.shape[1] - 1
    edits = {}
    for layer in range(parts.num_layers):
        clean = _capture_full(parts, ids, "z", layer)

        def fn(view, clean=clean):
            out = view.clone()
            out[:, :last] = clean[:, :last]
            return out

        edits[("z", layer)] = fn
    return edits


def _input_edits(pair: dict[str, Any], heads: list, position: str, variant: str, upto: bool) -> dict:
    """Input patching by hand, as full-forward hooks: the source's q of the heads at the group position, and the
    k/v (k_proj / v_proj outputs) of their kv heads at every position before it (``upto``: and at it)."""
    enc, src, tgt = pair["enc"], pair["src"], pair["tgt"]
    pos = getattr(enc, position).tolist()
    edits = {}
    for layer in sorted({h[0] for h in heads}):
        hs = [h for lyr, h in heads if lyr == layer]
        for site in variant:
            value = _capture_full(src, enc.input_ids, site, layer)
            idx = hs if site == "q" else sorted({kv_head(tgt, h) for h in hs})

            def fn(view, value=value, idx=idx, site=site):
                out = view.clone()
                for b, p in enumerate(pos):
                    if site == "q":
                        out[b, p, idx] = value[b, p, idx]
                    else:
                        end = p + 1 if upto else p
                        out[b, :end, idx] = value[b, :end, idx]
                return out

            edits[(site, layer)] = fn
    return edits


def _paper_reference(pair: dict[str, Any], heads: list, position: str, variant: str) -> torch.Tensor:
    """The paper's input patching by hand, in a full forward: :func:`_input_edits` with k/v before the group
    position, and every head's z before the last token reset to the target's clean z in every layer."""
    enc, tgt = pair["enc"], pair["tgt"]
    edits = _reset_edits(tgt, enc.input_ids) | _input_edits(pair, heads, position, variant, upto=False)
    return _full(tgt, enc.input_ids, edits)


@pytest.mark.parametrize("position", ["last", "query_label"])
@pytest.mark.parametrize("variant", ["q", "k", "v", "qk", "qkv"])
def test_paper_input_patching_equals_a_hand_made_full_forward(pair, variant, position):
    """The default mode: k/v before the group position, q at it, every z before the last token reset. At an
    earlier group position (the position detector's query label) the q patch is reset away, k/v still act."""
    enc, tgt = pair["enc"], pair["tgt"]
    heads = [(1, 2), (2, 3)]
    want = _paper_reference(pair, heads, position, variant)
    got = _cmap(pair, input_patches(tgt, heads, position, variant), reset=True)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    clean = clean_run(tgt, enc.input_ids).logits
    if position == "query_label" and variant == "q":
        torch.testing.assert_close(got, clean, rtol=0, atol=0)  # nothing can change: the clean logits
    else:
        assert not torch.allclose(want, clean, atol=1e-4)  # the patch matters


def test_paper_input_patching_from_layer_0_with_every_kv_head(pair):
    """Patches in the first layer (the suffix runs every layer) and on every kv head of a layer."""
    tgt = pair["tgt"]
    heads = [(0, h) for h in range(4)] + [(1, 0)]
    want = _paper_reference(pair, heads, "last", "qkv")
    got = _cmap(pair, input_patches(tgt, heads, "last", "qkv", "paper"), reset=True)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_paper_mode_and_no_reset_differ(pair):
    """The option switches behaviour: without the reset a layer-0 k/v patch reaches the last token through
    every later position too, and a q patch at an earlier position acts (the reset undoes it)."""
    enc, tgt = pair["enc"], pair["tgt"]
    clean = clean_run(tgt, enc.input_ids).logits
    heads = [(0, 1)]
    for variant in ("k", "v"):
        paper = _cmap(pair, input_patches(tgt, heads, "last", variant, "paper"), reset=True)
        no_reset = _cmap(pair, input_patches(tgt, heads, "last", variant, "no_reset"))
        assert not torch.allclose(paper, no_reset, atol=1e-3), variant
        assert not torch.allclose(paper, clean, atol=1e-4), variant
    q_early = input_patches(tgt, heads, "query_label", "q", "no_reset")
    assert q_early == input_patches(tgt, heads, "query_label", "q", "paper")  # the same patch ...
    torch.testing.assert_close(_cmap(pair, q_early, reset=True), clean, rtol=0, atol=0)  # ... reset away
    assert not torch.allclose(_cmap(pair, q_early), clean, atol=1e-4)  # ... or not
    assert resets("input/value_fetcher/k", "paper") and not resets("input/value_fetcher/k", "no_reset")
    assert not resets("output/value_fetcher", "paper")


def test_input_patches_of_the_two_modes():
    parts = ModelParts(None, [], heads=4, kv_heads=2, head_dim=16)  # type: ignore[arg-type]
    paper = input_patches(parts, [(1, 3), (1, 2), (0, 0)], "last", "qk")
    assert paper == [
        Patch("k", 0, (0,), "last", "before"),
        Patch("k", 1, (1,), "last", "before"),  # heads 2 and 3 share kv head 1
        Patch("q", 0, (0,), "last"),
        Patch("q", 1, (2, 3), "last"),
    ]
    no_reset = input_patches(parts, [(1, 3), (1, 2), (0, 0)], "last", "qk", "no_reset")
    assert [p.span for p in no_reset] == ["upto", "upto", "at", "at"]
    with pytest.raises(ValueError, match="unknown input patching mode"):
        input_patches(parts, [(0, 0)], "last", "v", "reset")


@pytest.mark.parametrize("variant", ["q", "k", "v", "qk", "qkv"])
def test_no_reset_input_patching_equals_a_hand_made_full_forward(pair, variant):
    """q at the last token; k/v of the head's kv head at every position up to the last one, nothing reset."""
    enc, tgt = pair["enc"], pair["tgt"]
    heads = [(1, 2), (2, 3)]
    want = _full(tgt, enc.input_ids, _input_edits(pair, heads, "last", variant, upto=True))
    got = _cmap(pair, input_patches(tgt, heads, "last", variant, "no_reset"))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert not torch.allclose(want, clean_run(tgt, enc.input_ids).logits, atol=1e-4)


def test_kv_patching_stops_at_the_group_position(pair):
    """no_reset k/v input patching at an earlier group position (query label) leaves later positions' keys alone."""
    enc, src, tgt = pair["enc"], pair["src"], pair["tgt"]
    k_src = _capture_full(src, enc.input_ids, "k", 1)
    kv = kv_head(tgt, 2)

    def fn(view):
        out = view.clone()
        for i, p in enumerate(enc.query_label.tolist()):
            out[i, : p + 1, kv] = k_src[i, : p + 1, kv]
        return out

    want = _full(tgt, enc.input_ids, {("k", 1): fn})
    got = _cmap(pair, input_patches(tgt, [(1, 2)], "query_label", "k", "no_reset"))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def _settings(groups: list[str], variants: list[str], mode: str) -> CmapSettings:
    heads = dict.fromkeys(GROUPS, "circuit")
    return CmapSettings("source", heads, groups, variants, mode, batch_size=8, confidence=0.95)


@pytest.mark.parametrize("mode", ["paper", "no_reset"])
def test_every_plan_equals_the_full_forward_with_the_same_edits(pair, mode):
    """The fast engines (from the lowest patched layer and each row's earliest patched position; the last
    token only where the plan resets) give the full forward's logits for every configuration of a pair."""
    enc, src, tgt = pair["enc"], pair["src"], pair["tgt"]
    head_sets = {g: {"heads": [list(h) for h in CIRCUIT[g]]} for g in GROUPS}
    groups = ["value_fetcher", "pos_transmitter", "pos_detector"]
    plans = plans_for(tgt, head_sets, _settings(groups, ["q", "k", "v", "qkv"], mode))
    assert len(plans) == 5 + 3 * 4
    slots = needed_slots(plans)
    acts, _ = capture_source(src, enc, slots)
    clean = clean_run(tgt, enc.input_ids)
    reset_edits = _reset_edits(tgt, enc.input_ids)
    for key, patches in plans.items():
        fast = cmap_logits(tgt, enc, clean, patches, acts, slots, reset=resets(key, mode))
        edits = patch_edits(tgt, patches, enc, acts, slots, torch.arange(len(enc)), 0)
        if resets(key, mode):
            assert not any(site == "z" for site, _ in edits)
            edits = {**edits, **reset_edits}
        full = _full(tgt, enc.input_ids, edits)
        torch.testing.assert_close(fast, full, rtol=0, atol=1e-5, msg=key)
    full_circuit = plans["output/full_circuit"]
    assert sum(len(p.heads) for p in full_circuit) == 7  # 8 listed, (1, 3) at the last token once
    assert {p.position for p in full_circuit} == {"last", "query_label", "prev_query_label"}


@pytest.mark.parametrize("mode", ["paper", "no_reset"])
def test_patching_a_model_into_itself_changes_nothing(pair, mode):
    enc, tgt = pair["enc"], pair["tgt"]
    head_sets = {g: {"heads": [list(h) for h in CIRCUIT[g]]} for g in GROUPS}
    plans = plans_for(tgt, head_sets, _settings(list(GROUPS), ["q", "k", "v", "qk", "qkv"], mode))
    slots = needed_slots(plans)
    acts, own = capture_source(tgt, enc, slots)
    clean = clean_run(tgt, enc.input_ids)
    torch.testing.assert_close(own, clean.logits, rtol=0, atol=1e-5)
    for key, patches in plans.items():
        got = cmap_logits(tgt, enc, clean, patches, acts, slots, reset=resets(key, mode))
        torch.testing.assert_close(got, clean.logits, rtol=0, atol=1e-5, msg=key)


# ------------------------------------------------------------------------------------- the rule


def _study(tmp_path, models: dict[str, Any], cmap: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_config({"study": "t", "device": "cpu", "models": models, "cmap": cmap or {}}, REPO / "config")


TWO = {
    "base": {"role": "base", "source": "builtin", "builtin": {"layers": 3, "seed": 0}},
    "tuned": {"role": "finetuned", "base_model": "base", "source": "builtin", "builtin": {"layers": 3, "seed": 1}},
}


def _run_cmap(cfg: dict[str, Any], source: str, target: str, *files: Any) -> dict[str, Any]:
    """Rule cmap's call (scripts/cmap.py) on a study's config."""
    name = circuit_name(cfg, source, target)
    return run_cmap(model_source(cfg, source), model_source(cfg, target), name, *files, CmapSettings.of(cfg))


def _write_circuits(root, circuits: dict[str, dict[str, list]]) -> None:
    for name, circuit in circuits.items():
        save_circuit(root / "circuits" / name / "circuit.json", circuit)


FROM_CIRCUIT = {"heads": dict.fromkeys(GROUPS, "circuit")}


def test_run_cmap_writes_every_group_and_variant(tmp_path, small_data, monkeypatch):
    cfg = _study(tmp_path, TWO, FROM_CIRCUIT)
    assert cfg["cmap"]["input_mode"] == "paper"  # the paper's definition is the default
    resetting: list[int] = []
    real = cmap_module.reset_logits
    monkeypatch.setattr(cmap_module, "reset_logits", lambda *a, **k: resetting.append(1) or real(*a, **k))
    assert cmap_pairs(cfg) == [("tuned", "base")]
    data = tmp_path / "eval.jsonl"
    write_jsonl(data, small_data["eval"][:14])
    _write_circuits(tmp_path, {"tuned": CIRCUIT})
    circuit_file, dcm = head_set_files(cfg, "tuned", "base", str(tmp_path))
    assert circuit_file == f"{tmp_path}/circuits/tuned/circuit.json" and dcm == {}
    out = tmp_path / "cmap" / "tuned__base.json"
    res = _run_cmap(cfg, "tuned", "base", data, circuit_file, dcm, out)
    assert res["records"] == 14 and res["circuit"] == "tuned" and res["circuit_of"] == "source"
    assert res["input_mode"] == "paper" and len(resetting) == 2 * (2 * 5)  # 2 batches x every input plan
    assert len(res["input"]["value_fetcher"]["k"]["outcomes"]) == 14
    assert list(res["output"]) == ["struct_reader", "pos_detector", "pos_transmitter", "value_fetcher", "full_circuit"]
    assert res["output"]["full_circuit"]["heads"] == 8 and res["output"]["struct_reader"]["heads"] == 2
    assert res["output"]["struct_reader"]["positions"] == ["prev_query_label"]
    assert list(res["input"]) == ["value_fetcher", "pos_transmitter"]
    assert list(res["input"]["value_fetcher"]) == ["q", "k", "v", "qk", "qkv"]
    assert res["input"]["value_fetcher"]["q"]["kv_heads"] == []  # q patches no key/value head
    assert res["input"]["value_fetcher"]["k"]["kv_heads"] == [[1, 1], [2, 0]]  # heads 3 and 1 of 4 read kv 1 and 0
    assert res["head_sets"]["pos_detector"] == {"from": "circuit", "circuit": "tuned", "heads": [[1, 2], [0, 1]]}
    for row in [*res["output"].values(), *(v for g in res["input"].values() for v in g.values())]:
        assert row["patched"] is True and row["records"] == 14 and row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert read_json(out) == res
    first = out.read_bytes()
    _run_cmap(cfg, "tuned", "base", data, circuit_file, dcm, out)
    assert out.read_bytes() == first  # byte-reproducible
    resetting.clear()
    cfg_nr = _study(tmp_path, TWO, {**FROM_CIRCUIT, "input_mode": "no_reset"})
    res_nr = _run_cmap(cfg_nr, "tuned", "base", data, circuit_file, dcm, tmp_path / "no_reset.json")
    assert res_nr["input_mode"] == "no_reset" and resetting == []  # honoured: no plan resets
    assert res_nr["output"] == res["output"] and res_nr["target_accuracy"] == res["target_accuracy"]
    with pytest.raises(ConfigError, match="input_mode"):
        _study(tmp_path, TWO, {"input_mode": "reset"})
    write_cmap_table([out], tmp_path / "cmap.csv")
    rows = list(csv.DictReader((tmp_path / "cmap.csv").open()))
    assert len(rows) == 5 + 2 * 5
    assert [(r["kind"], r["group"], r["variant"]) for r in rows[:2]] == [
        ("output", "struct_reader", "z"),
        ("output", "pos_detector", "z"),
    ]
    assert rows[-1]["source"] == "tuned" and (rows[-1]["kind"], rows[-1]["variant"]) == ("input", "qkv")
    assert {r["input_mode"] for r in rows if r["kind"] == "input"} == {"paper"}  # how the inputs were patched
    assert {r["input_mode"] for r in rows if r["kind"] == "output"} == {""}
    assert float(rows[0]["target_accuracy"]) == res["target_accuracy"]["accuracy"]


def test_self_pair_and_empty_head_sets(tmp_path, small_data):
    """A model patched into itself keeps its accuracy everywhere; an empty group patches nothing."""
    cfg = _study(tmp_path, TWO, {"pairs": [["base", "base"]], "input_groups": list(GROUPS), **FROM_CIRCUIT})
    data = tmp_path / "eval.jsonl"
    write_jsonl(data, small_data["eval"][:14])
    _write_circuits(tmp_path, {"base": {**CIRCUIT, "pos_detector": []}})
    circuit_file, dcm = head_set_files(cfg, "base", "base", str(tmp_path))
    res = _run_cmap(cfg, "base", "base", data, circuit_file, dcm, tmp_path / "out.json")
    acc = res["target_accuracy"]["accuracy"]
    assert res["source_accuracy"]["accuracy"] == acc
    rows = [*res["output"].values(), *(v for g in res["input"].values() for v in g.values())]
    assert len(rows) == 5 + 4 * 5 and all(r["accuracy"] == acc for r in rows)
    assert res["output"]["pos_detector"]["patched"] is False and res["output"]["pos_detector"]["heads"] == 0
    assert res["input"]["pos_detector"]["qkv"]["patched"] is False
    assert res["output"]["struct_reader"]["patched"] is True


def _dcm_file(root, circuit: str, group: str, desideratum: str, selected: list, heads: list | None = None) -> None:
    write_json(
        root / "dcm" / circuit / group / f"{desideratum}.json",
        {
            "circuit": circuit,
            "model": circuit,
            "group": group,
            "desideratum": desideratum,
            "heads": heads if heads is not None else [list(h) for h in CIRCUIT[group]],
            "selected": selected,
            "test_accuracy": 0.5,
        },
    )


def test_head_sets_from_dcm_files(tmp_path):
    cmap = {
        "circuit_of": "target",
        "heads": {
            "value_fetcher": "dcm:object_value",
            "pos_transmitter": "dcm:positional",
            "pos_detector": "dcm:positional",
            "struct_reader": "circuit",
        },
    }
    cfg = _study(tmp_path, TWO, cmap)
    circuit_file, dcm = head_set_files(cfg, "tuned", "base", str(tmp_path))
    assert circuit_file == f"{tmp_path}/circuits/base/circuit.json"  # circuit_of: target
    assert dcm == {
        "value_fetcher": f"{tmp_path}/dcm/base/value_fetcher/object_value.json",
        "pos_transmitter": f"{tmp_path}/dcm/base/pos_transmitter/positional.json",
        "pos_detector": f"{tmp_path}/dcm/base/pos_detector/positional.json",
    }
    _write_circuits(tmp_path, {"base": CIRCUIT})
    _dcm_file(tmp_path, "base", "value_fetcher", "object_value", [[2, 1]])
    _dcm_file(tmp_path, "base", "pos_transmitter", "positional", [])
    _dcm_file(tmp_path, "base", "pos_detector", "positional", [[0, 1], [1, 2]])
    sets = resolve_head_sets(cfg["cmap"]["heads"], "base", circuit_file, dcm, 3, 4)
    assert sets["value_fetcher"]["heads"] == [[2, 1]] and sets["value_fetcher"]["from"] == "dcm"
    assert sets["value_fetcher"]["desideratum"] == "object_value" and sets["value_fetcher"]["dcm_test_accuracy"] == 0.5
    assert sets["pos_transmitter"]["heads"] == []
    assert sets["pos_detector"]["heads"] == [[0, 1], [1, 2]]
    assert sets["struct_reader"] == {"from": "circuit", "circuit": "base", "heads": [[0, 0], [0, 3]]}
    _dcm_file(tmp_path, "other", "value_fetcher", "object_value", [[2, 1]])
    wrong = {**dcm, "value_fetcher": f"{tmp_path}/dcm/other/value_fetcher/object_value.json"}
    with pytest.raises(ValueError, match="not the DCM result of circuit 'base'"):
        resolve_head_sets(cfg["cmap"]["heads"], "base", circuit_file, wrong, 3, 4)
    _dcm_file(tmp_path, "base", "value_fetcher", "object_value", [[5, 1]])
    with pytest.raises(ValueError, match="do not exist"):
        resolve_head_sets(cfg["cmap"]["heads"], "base", circuit_file, dcm, 3, 4)


def test_pair_validation(tmp_path, bos_tokenizer, nobos_tokenizer, objects, small_data):
    with pytest.raises(ConfigError, match=r"cmap.pairs.1': \['nope'\] not a model"):
        _study(tmp_path, TWO, {"pairs": [["tuned", "base"], ["nope", "base"]]})
    with pytest.raises(ConfigError, match="listed twice"):
        _study(tmp_path, TWO, {"pairs": [["tuned", "base"], ["tuned", "base"]]})
    with pytest.raises(ConfigError, match="'cmap': Additional properties"):
        _study(tmp_path, TWO, {"pair": []})
    assert cmap_pairs(_study(tmp_path, TWO, {"pairs": [["base", "tuned"]]})) == [("base", "tuned")]
    records = small_data["eval"][:3]
    va, vb = check_vocabulary(bos_tokenizer, objects), check_vocabulary(nobos_tokenizer, objects)
    ea, eb = encode_records(bos_tokenizer, records, va), encode_records(nobos_tokenizer, records, vb)
    check_pair("a", "a2", ea, ea, va, va)
    with pytest.raises(CmapPairError, match=r"a -> b: the two models tokenize the task differently.*models\.a\.tok"):
        check_pair("a", "b", ea, eb, va, vb)


def test_pairs_of_different_tokenizers_or_sizes_fail_with_the_fix(tmp_path, small_data):
    models = {
        **TWO,
        "qwen": {"role": "base", "source": "builtin", "builtin": {"arch": "qwen2", "tokenizer": "bytelevel"}},
        "deep": {"role": "base", "source": "builtin", "builtin": {"layers": 4}},
    }
    cfg = _study(tmp_path, models, {"pairs": [["tuned", "qwen"], ["tuned", "deep"]], **FROM_CIRCUIT})
    data = tmp_path / "eval.jsonl"
    write_jsonl(data, small_data["eval"][:7])
    _write_circuits(tmp_path, {"tuned": CIRCUIT})
    circuit_file, dcm = head_set_files(cfg, "tuned", "qwen", str(tmp_path))
    with pytest.raises(CmapPairError, match="tokenize the task differently"):
        _run_cmap(cfg, "tuned", "qwen", data, circuit_file, dcm, tmp_path / "x.json")
    with pytest.raises(CmapPairError, match="different geometry"):
        _run_cmap(cfg, "tuned", "deep", data, circuit_file, dcm, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_config_head_sets(tmp_path):
    with pytest.raises(
        ConfigError, match=r"cmap.heads.value_fetcher.*Fix: set .* one of \['circuit', 'dcm:positional'"
    ):
        _study(tmp_path, TWO, {"heads": {"value_fetcher": "dcm"}})
    paper = {"value_fetcher": "dcm:object_value", "pos_transmitter": "dcm:positional",
             "pos_detector": "dcm:positional", "struct_reader": "circuit"}  # fmt: skip
    assert _study(tmp_path, TWO)["cmap"]["heads"] == paper  # the paper's choice is the default
    # a study overrides one group wholesale
    assert _study(tmp_path, TWO, {"heads": {"pos_detector": "circuit"}})["cmap"]["heads"]["pos_detector"] == "circuit"
