"""Noise-guarded head selection: constructed per-example scores, the chain of stages, group assignment,
bootstrap frequencies, and the claims a no-signal stage makes not applicable. The shipped default run's
selections are checked in tests/test_workflow.py."""

from __future__ import annotations

import csv
from typing import Any

import pytest
import torch

from entity_tracking.circuits import GROUPS, group_status, load_circuit
from entity_tracking.claims import NOT_APPLICABLE, Results, Study, evaluate_claims
from entity_tracking.io import read_json, write_json, write_safetensors
from entity_tracking.path_patching import DEFAULT_SELECTION, discover
from entity_tracking.selection import (
    NO_SIGNAL,
    NOT_RUN,
    SIGNAL,
    StageFileError,
    assign_groups,
    bootstrap_frequencies,
    chain_tests,
    eligible_senders,
    load_stages,
    ranked,
    run_bootstrap,
    stage_test,
)
from tests.synthetic import write_results

SETTINGS = dict(DEFAULT_SELECTION)  # alpha 0.05, holm, min_effect 0.005
L, H, N = 4, 4, 200


def noise(seed: int, scale: float = 0.05) -> torch.Tensor:
    """Per-example scores ``[N, L, H]`` whose mean is exactly 0 in every head: pure noise."""
    x = scale * torch.randn(N, L, H, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x - x.mean(0)).float()


def with_effect(x: torch.Tensor, effects: dict[tuple[int, int], float]) -> torch.Tensor:
    x = x.clone()
    for head, mean in effects.items():
        x[:, head[0], head[1]] += mean
    return x


def zero_unreachable(x: torch.Tensor, receivers: list[tuple[int, int]]) -> torch.Tensor:
    """What path patching gives: exactly 0 for senders at or above the highest receiver layer."""
    return x * eligible_senders(L, H, receivers)[None]


class Scorer:
    """Constructed per-example scores per stage, recording the calls path patching would make."""

    def __init__(self, stages: dict[str, torch.Tensor]):
        self.stages, self.calls = stages, []

    def __call__(self, stage: str, receivers: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        self.calls.append((stage, list(receivers)))
        x = zero_unreachable(self.stages[stage], receivers) if receivers else self.stages[stage]
        return {"prob": x, "logit": 4 * x}


def test_a_pure_noise_stage_has_no_signal_and_stops_the_chain():
    vf = with_effect(noise(0), {(3, 1): -0.5, (2, 2): -0.2})
    pd = with_effect(noise(2), {(0, 0): -0.4})  # a detector effect the chain never reaches
    scorer = Scorer({"value_fetcher": vf, "pos_transmitter": noise(1), "pos_detector": pd, "struct_reader": noise(3)})
    out = discover(scorer, dict.fromkeys(GROUPS, 3), "prob", SETTINGS)
    assert out["value_fetcher"]["status"] == SIGNAL and out["value_fetcher"]["top"] == [(3, 1), (2, 2)]
    assert out["pos_transmitter"]["status"] == NO_SIGNAL and out["pos_transmitter"]["top"] == []
    assert [s for s, _ in scorer.calls] == ["value_fetcher", "pos_transmitter"]  # the chain stopped
    assert scorer.calls[1][1] == [(3, 1), (2, 2)]  # the transmitters were scored through the selected fetchers
    for stage in ("pos_detector", "struct_reader"):
        assert out[stage]["status"] == NOT_RUN and out[stage]["examples"] is None
        assert "no signal in stage pos_transmitter" in out[stage]["reason"]


def test_signal_in_every_stage_runs_the_whole_chain():
    stages = {
        "value_fetcher": with_effect(noise(0), {(3, 1): -0.5}),
        "pos_transmitter": with_effect(noise(1), {(2, 0): -0.3}),
        "pos_detector": with_effect(noise(2), {(1, 3): -0.3}),
        "struct_reader": with_effect(noise(3), {(0, 2): -0.3}),
    }
    out = discover(Scorer(stages), dict.fromkeys(GROUPS, 2), "prob", SETTINGS)
    assert [out[g]["top"] for g in GROUPS] == [[(3, 1)], [(2, 0)], [(1, 3)], [(0, 2)]]
    assert all(out[g]["status"] == SIGNAL for g in GROUPS)


def test_senders_that_cannot_reach_a_receiver_are_never_selected():
    x = with_effect(noise(5), {(3, 0): -0.5, (2, 1): -0.5, (1, 1): -0.2})  # (3, 0) sits at the receivers' layer
    test = stage_test(x, [(3, 2)], SETTINGS)
    assert not bool(test.eligible[3].any()) and bool(test.eligible[:3].all())
    assert ranked(test, 5) == [(2, 1), (1, 1)]
    assert torch.isnan(test.p[3]).all()  # not in the family of the correction either


def test_min_effect_and_the_correction_keep_tiny_or_lone_effects_out():
    x = with_effect(torch.zeros(N, L, H) + 1e-4 * torch.randn(N, L, H, generator=torch.Generator().manual_seed(1)),
                    {(1, 1): -0.002})  # significant, but below min_effect  # fmt: skip
    test = stage_test(x, [], SETTINGS)
    assert float(test.p_adjusted[1, 1]) < 1e-10 and not bool(test.qualifies.any())
    assert bool(stage_test(x, [], SETTINGS | {"min_effect": 0.001}).qualifies[1, 1])
    # one head barely past the uncorrected level: Holm over 16 heads rejects it, no correction keeps it
    y = noise(7, 1.0)
    y[:, 0, 0] = torch.linspace(-1, 1, N) - 0.1  # t ~ -2.4: p ~ 0.01, 16 x 0.01 > 0.05
    assert not bool(stage_test(y, [], SETTINGS).qualifies[0, 0])
    assert bool(stage_test(y, [], SETTINGS | {"correction": "none"}).qualifies[0, 0])


def test_a_head_in_two_groups_of_one_position_goes_where_its_effect_is_larger():
    vf = stage_test(with_effect(noise(0), {(2, 1): -0.5, (1, 0): -0.1, (2, 3): -0.3}), [], SETTINGS)
    pt = stage_test(
        zero_unreachable(with_effect(noise(1), {(1, 0): -0.4, (2, 1): -0.05}), [(3, 0)]), [(3, 0)], SETTINGS
    )
    pd = stage_test(zero_unreachable(with_effect(noise(2), {(1, 0): -0.3}), [(2, 0)]), [(2, 0)], SETTINGS)
    groups = assign_groups({"value_fetcher": vf, "pos_transmitter": pt, "pos_detector": pd, "struct_reader": None},
                           dict.fromkeys(GROUPS, 5))  # fmt: skip
    assert (1, 0) in groups["pos_transmitter"] and (1, 0) not in groups["value_fetcher"]  # -0.4 beats -0.1
    assert (2, 1) in groups["value_fetcher"] and (2, 1) not in groups["pos_transmitter"]  # -0.5 beats -0.05
    assert (1, 0) in groups["pos_detector"]  # another position: a node of its own
    assert groups["struct_reader"] == []
    # a head that is noise in a stage never enters that group, whatever its other score
    quiet = stage_test(zero_unreachable(noise(3), [(3, 0)]), [(3, 0)], SETTINGS)
    only_vf = assign_groups({"value_fetcher": vf, "pos_transmitter": quiet}, dict.fromkeys(GROUPS, 5))
    assert only_vf["pos_transmitter"] == [] and (2, 1) in only_vf["value_fetcher"]


def test_bootstrap_frequencies_separate_signal_from_noise_and_are_seeded():
    vf = with_effect(noise(0), {(3, 1): -0.5, (2, 2): -0.012})  # (2, 2): at the edge of the noise guard
    examples = {"value_fetcher": vf, "pos_transmitter": noise(1)}
    receivers = {"value_fetcher": [], "pos_transmitter": [(3, 1)]}
    freq, signal, picks = bootstrap_frequencies(examples, receivers, dict.fromkeys(GROUPS, 3), SETTINGS, 100, 0)
    assert float(freq["value_fetcher"][3, 1]) == 1.0
    assert 0.0 < float(freq["value_fetcher"][2, 2]) < 1.0
    quiet = freq["value_fetcher"].clone()
    quiet[3, 1] = quiet[2, 2] = 0
    assert float(quiet.max()) <= 0.05  # pure noise heads: rarely selected
    assert signal["value_fetcher"] == 1.0 and signal["pos_transmitter"] < 0.2 and signal["pos_detector"] == 0.0
    assert len(picks) == 100
    again, _, _ = bootstrap_frequencies(examples, receivers, dict.fromkeys(GROUPS, 3), SETTINGS, 100, 0)
    assert all(torch.equal(freq[g], again[g]) for g in GROUPS)


def _stage_files(tmp_path, out: dict[str, Any], selection: dict[str, Any]) -> tuple[Any, Any]:
    """Rule path_patching's two files for a :func:`discover` result."""
    tensors = {f"{g}.prob.examples": out[g]["examples"]["prob"] for g in GROUPS if out[g]["examples"] is not None}
    tensors |= {f"{g}.prob": t.mean(0) for g, t in ((k[:-14], v) for k, v in list(tensors.items()))}
    scores, summary = tmp_path / "path_patching.safetensors", tmp_path / "path_patching.json"
    write_safetensors(scores, tensors)
    stages = {g: {"status": out[g]["status"], "receivers": [list(h) for h in out[g]["receivers"]]} for g in GROUPS}
    write_json(summary, {"selection": selection, "stages": stages})
    return scores, summary


def test_bootstrap_rule_and_the_stage_files_it_checks(tmp_path):
    vf = with_effect(noise(0), {(3, 1): -0.5, (2, 2): -0.2})
    out = discover(
        Scorer({"value_fetcher": vf, "pos_transmitter": noise(1)}), dict.fromkeys(GROUPS, 3), "prob", SETTINGS
    )
    scores, summary = _stage_files(tmp_path, out, SETTINGS)
    examples, receivers = load_stages(scores, summary, "prob", SETTINGS)
    assert list(examples) == ["value_fetcher", "pos_transmitter"] and receivers["pos_transmitter"] == [(3, 1), (2, 2)]
    tests = chain_tests(examples, receivers, SETTINGS)
    assert tests["pos_detector"] is None
    circuit = tmp_path / "circuit.json"
    write_json(circuit, {"value_fetcher": [[3, 1]], "pos_transmitter": [], "pos_detector": [], "struct_reader": []})
    settings = SETTINGS | {"bootstrap": 50, "bootstrap_seed": 1}
    result = run_bootstrap("m", scores, summary, circuit, dict.fromkeys(GROUPS, 3), "prob", settings,
                           tmp_path / "b.csv", tmp_path / "b.json")  # fmt: skip
    assert result["stage_status"] == {"value_fetcher": SIGNAL, "pos_transmitter": NO_SIGNAL, "pos_detector": NOT_RUN,
                                      "struct_reader": NOT_RUN}  # fmt: skip
    assert result["circuit_frequency"]["value_fetcher"] == [[3, 1, 1.0]]
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert len(rows) == 2 * L * H  # every head of the two stages that ran
    top = next(r for r in rows if (r["group"], r["layer"], r["head"]) == ("value_fetcher", "3", "1"))
    assert (top["in_circuit"], top["candidate"], float(top["frequency"])) == ("1", "1", 1.0)
    # files that disagree are refused, with the fix
    with pytest.raises(StageFileError, match=r"selected with .* not the configured"):
        load_stages(scores, summary, "prob", SETTINGS | {"alpha": 0.01})
    bad = read_json(summary)
    bad["stages"]["pos_detector"]["status"] = SIGNAL
    write_json(summary, bad)
    with pytest.raises(StageFileError, match="rerun snakemake"):
        load_stages(scores, summary, "prob", SETTINGS)


def test_a_no_signal_stage_makes_every_claim_that_needs_it_not_applicable(tmp_path):
    models = {
        "base": {"role": "base", "label": "Base"},
        "ft": {"role": "finetuned", "base_model": "base", "label": "FT"},
    }
    cfg = write_results(tmp_path, models, no_signal={"base": "pos_transmitter", "ft": "pos_transmitter"},
                        accuracy={"base": 0.6, "ft": 0.8})  # fmt: skip
    root = tmp_path / "results" / "default"
    status = group_status(root / "circuits" / "base" / "circuit.json")
    assert [status[g]["status"] for g in GROUPS] == [SIGNAL, NO_SIGNAL, NOT_RUN, NOT_RUN]
    circuit = load_circuit(root / "circuits" / "base" / "circuit.json")
    assert circuit["value_fetcher"] and not any(circuit[g] for g in GROUPS[1:])
    claims = {c.id: c for c in evaluate_claims(Results(root, Study.of(cfg)))}
    dependent = [
        "Q.base_circuit_faithful.ft", "Q.own_circuit_faithful.base", "Q.beats_random.base", "Q.complete.base",
        "Q.base_circuit_survives.ft", "Q.dcm_position_transmitter.base", "Q.dcm_position_detector.base",
        "Q.dcm_structure_reader_at_floor.base", "Q.cmap_lifts_base.ft.pos_transmitter", "Q.cmap_full_circuit.ft",
        "Q.cmap_no_lift.ft.pos_detector", "Q.cmap_no_lift.ft.struct_reader",
    ]  # fmt: skip
    for cid in dependent:
        assert claims[cid].verdict == NOT_APPLICABLE, (cid, claims[cid].verdict, claims[cid].note)
        assert "no signal in stage position transmitter" in claims[cid].note, cid
    # the value fetcher had signal: its own claims are still judged
    assert claims["Q.dcm_object_value.base"].verdict in ("pass", "fail")
    assert claims["Q.cmap_lifts_base.ft.value_fetcher"].verdict in ("pass", "fail")
    assert claims["Q.more_accurate.ft"].verdict == "pass"
