"""The claims report: verdicts on constructed results, missing inputs, other studies, and the writers."""

from __future__ import annotations

import json

import pytest
import torch

from entity_tracking import paper
from entity_tracking.circuit_eval import write_overlap
from entity_tracking.circuits import GROUPS
from entity_tracking.claims import (
    FAIL,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    PASS,
    Claim,
    Results,
    Study,
    evaluate_claims,
    run_claims,
    write_claims,
)
from entity_tracking.io import read_safetensors, write_safetensors
from tests.synthetic import DEFAULT_MODELS, PAPER_MODELS, write_results


def _by_id(claims: list[Claim]) -> dict[str, Claim]:
    return {c.id: c for c in claims}


def ours_for(paper_value: float, desideratum: str, model: str) -> float:
    """The accuracy of ours whose original-style value ``(1 - 1/7) * ours + a / 7`` is the paper's (positional)."""
    if desideratum != "positional":
        return paper_value
    return (paper_value - paper.ACCURACY[model] / 7) * 7 / 6


def _paper_results(tmp_path, **overrides):
    """A paper-study results tree whose numbers are the paper's, unless overridden."""
    circuit_accuracy = {(paper.LLAMA, m): v for m, v in paper.LLAMA_CIRCUIT_ACCURACY.items()}
    circuit_accuracy |= {(paper.PUBLISHED_LLAMA, m): v for m, v in paper.LLAMA_CIRCUIT_ACCURACY.items()}
    circuit_accuracy |= {(paper.GOAT, m): v for m, v in paper.GOAT_CIRCUIT_ACCURACY.items()}
    settings = {
        "study": "paper",
        "layers": 32,
        "heads": 32,
        "accuracy": dict(paper.ACCURACY),
        "sizes": {m: dict(zip(("value_fetcher", "pos_transmitter", "pos_detector", "struct_reader"), v, strict=True))
                  for m, v in paper.CIRCUIT_SIZES.items()},
        "circuit_accuracy": circuit_accuracy,
        "random_accuracy": dict(paper.RANDOM_CIRCUIT_ACCURACY),
        "completeness_gap": dict(paper.COMPLETENESS),
        "external": (paper.PUBLISHED_LLAMA,),
        "dcm": {(paper.LLAMA, g, d): (ours_for(v, d, paper.LLAMA), 0.05) for (g, d), (_, v) in paper.DCM_LLAMA.items()},
        "activation_patching": {(paper.LLAMA, m, g, d): (ours_for(v / 100, d, m), 0.05)
                                for (g, d), per in paper.ACTIVATION_PATCHING.items() for m, v in per.items()},
        "cmap": {(m, "full_circuit" if g == "full" else g): v
                 for m, bars in paper.CMAP.items() for g, v in bars.items()},
        "knockout": {(paper.LLAMA, k): v for k, v in paper.KNOCKOUT_CURVES.items()},
    }  # fmt: skip
    config = write_results(tmp_path, PAPER_MODELS, **(settings | overrides))
    # Llama's path-patching scores: the paper's strongest head of each stage, at the paper's score
    scores_file = tmp_path / "results" / "paper" / "circuits" / paper.LLAMA / "path_patching.safetensors"
    scores = read_safetensors(scores_file)
    for g, (head, score) in paper.STRONGEST_HEAD.items():
        scores[f"{g}.prob"] = torch.full((32, 32), -0.001)
        scores[f"{g}.prob"][head] = score
    write_safetensors(scores_file, scores)
    return Results(tmp_path / "results" / "paper", Study.of(config))


def test_headline_numbers_pass_when_ours_are_the_papers(tmp_path):
    claims = [c for c in evaluate_claims(_paper_results(tmp_path)) if c.kind == "headline"]
    assert len(claims) == 67  # every headline number of the paper (entity_tracking/paper.py)
    assert all(c.verdict == PASS for c in claims), [c for c in claims if c.verdict != PASS]
    by_id = _by_id(claims)
    assert by_id["H.activation_patching.value_fetcher.object_value.goat-7b"].paper == 0.659  # 65.9 % as a fraction
    assert by_id["H.dcm.pos_transmitter.positional"].ours["chance_floor"] == 0.05
    # positional numbers are compared as the original measured them: (1 - 1/B) * ours + accuracy / B
    dcm_pt = by_id["H.dcm.pos_transmitter.positional"]
    assert dcm_pt.ours["comparable"] == pytest.approx(0.362) and dcm_pt.ours["test_accuracy"] < 0.32
    assert "(1 - 1/B) * ours + a / B" in dcm_pt.note
    ap = by_id["H.activation_patching.pos_detector.positional.float-7b"].ours
    assert ap["comparable"] == pytest.approx(0.547) and ap["accuracy"] == pytest.approx((0.547 - 0.82 / 7) * 7 / 6)
    vf = by_id["H.dcm.value_fetcher.object_value"].ours
    assert vf["comparable"] == vf["test_accuracy"] == 0.468
    assert by_id["H.knockout.31"].ours == 0.65 and by_id["H.cmap.float-7b.full"].ours["accuracy"] == 0.82


def test_later_stage_headlines_fail_outside_tolerance_or_are_not_computed(tmp_path):
    cmap = {(m, g): v for m, bars in paper.CMAP.items() for g, v in bars.items() if g != "full"}
    cmap[(paper.GOAT, "pos_transmitter")] = 0.70  # the paper: 0.78
    results = _paper_results(tmp_path, cmap=cmap)
    (results.root / "dcm" / paper.LLAMA / "struct_reader" / "positional.json").unlink()
    (results.root / "knockout" / f"{paper.LLAMA}.json").unlink()
    claims = _by_id(evaluate_claims(results))
    assert claims[f"H.cmap.{paper.GOAT}.pos_transmitter"].verdict == FAIL
    assert claims[f"H.cmap.{paper.GOAT}.value_fetcher"].verdict == PASS
    missing = claims["H.dcm.struct_reader.positional"]
    assert missing.verdict == NOT_COMPUTED and "dcm/llama-7b/struct_reader/positional.json" in missing.note
    assert claims["H.knockout.0"].verdict == NOT_COMPUTED and claims["H.dcm.pos_detector.positional"].verdict == PASS


def test_headline_numbers_fail_outside_their_tolerance(tmp_path):
    accuracy = dict(paper.ACCURACY) | {paper.GOAT: 0.76, paper.FLOAT: 0.866}  # 0.06 below; 0.046 above
    claims = _by_id(evaluate_claims(_paper_results(tmp_path, accuracy=accuracy)))
    assert claims[f"H.accuracy.{paper.GOAT}"].verdict == FAIL
    assert claims[f"H.accuracy.{paper.FLOAT}"].verdict == PASS
    assert claims[f"H.accuracy.{paper.GOAT}"].ours == 0.76
    # Goat's faithfulness moves with its accuracy: 0.73 / 0.76 = 0.96 (paper 0.89), 0.81 / 0.76 = 1.07 (paper 0.99)
    assert claims[f"H.llama_circuit_faithfulness.{paper.GOAT}"].verdict == PASS
    assert claims[f"H.goat_circuit_faithfulness.{paper.GOAT}"].verdict == PASS


def test_strongest_head_must_be_the_same_head(tmp_path):
    results = _paper_results(tmp_path)
    scores = read_safetensors(results.path(f"circuits/{paper.LLAMA}/path_patching.safetensors"))
    scores["pos_transmitter.prob"][0, 0] = -0.34  # another head beats [14, 27]
    write_safetensors(results.root / "circuits" / paper.LLAMA / "path_patching.safetensors", scores)
    claims = _by_id(evaluate_claims(results))
    assert claims["H.strongest_head.pos_transmitter"].verdict == FAIL
    ours = claims["H.strongest_head.pos_transmitter"].ours
    assert ours["head"] == [0, 0] and abs(ours["score"] + 0.34) < 1e-6
    assert claims["H.strongest_head.pos_detector"].verdict == PASS


def test_circuit_sizes_within_a_quarter(tmp_path):
    sizes = {paper.LLAMA: {"value_fetcher": 30, "pos_transmitter": 7, "pos_detector": 15, "struct_reader": 5}}  # 57
    sizes[paper.GOAT] = {"value_fetcher": 50, "pos_transmitter": 28, "pos_detector": 40, "struct_reader": 9}  # 127
    claims = _by_id(evaluate_claims(_paper_results(tmp_path, sizes=sizes)))
    assert claims[f"H.circuit_size.{paper.LLAMA}"].verdict == PASS  # 72 - 25 % = 54
    assert claims[f"H.circuit_size.{paper.GOAT}"].verdict == FAIL  # 175 - 25 % = 131.25
    assert claims[f"H.circuit_size.{paper.LLAMA}"].ours == {"total": 57, "groups": [30, 7, 15, 5]}


def test_missing_results_are_not_computed_and_named(tmp_path):
    results = _paper_results(tmp_path)
    (results.root / "faithfulness" / paper.GOAT / f"{paper.VICUNA}.json").unlink()
    claims = _by_id(evaluate_claims(results))
    claim = claims[f"H.goat_circuit_accuracy.{paper.VICUNA}"]
    assert claim.verdict == NOT_COMPUTED and claim.ours is None
    assert f"results/paper/faithfulness/{paper.GOAT}/{paper.VICUNA}.json" in claim.note
    assert claims[f"H.goat_circuit_accuracy.{paper.GOAT}"].verdict == PASS


def test_headlines_are_not_applicable_on_other_studies(tmp_path):
    config = write_results(tmp_path)
    claims = evaluate_claims(Results(tmp_path / "results" / "default", Study.of(config)))
    headlines = [c for c in claims if c.kind == "headline"]
    assert headlines and all(c.verdict == NOT_APPLICABLE and c.ours is None for c in headlines)


def test_qualitative_claims_on_constructed_results(tmp_path):
    base, chat, lora, full, *_ = DEFAULT_MODELS
    config = write_results(
        tmp_path,
        accuracy={base: 0.60, chat: 0.80, lora: 0.50, full: 0.60},
        circuit_accuracy={(base, chat): 0.70, (base, lora): 0.30, (base, base): 0.55, (chat, chat): 0.04},
        random_accuracy={chat: 0.01},
        completeness_gap={base: 0.10, chat: 0.30},
    )
    claims = _by_id(evaluate_claims(Results(tmp_path / "results" / "default", Study.of(config))))
    assert claims[f"Q.more_accurate.{chat}"].verdict == PASS
    assert claims[f"Q.more_accurate.{lora}"].verdict == FAIL
    assert claims[f"Q.more_accurate.{full}"].verdict == FAIL  # equal is not more accurate
    assert claims[f"Q.more_accurate.{chat}"].ours["difference"] == 0.8 - 0.6
    assert "100 right only for" in claims[f"Q.more_accurate.{chat}"].note  # paired on the same prompts
    assert claims[f"Q.more_accurate.{chat}"].ours["p"] < 1e-20
    # a loss is reported with its two-sided test: not a gain (one-sided p near 1), but a significant change
    lost = claims[f"Q.more_accurate.{lora}"]
    assert lost.ours["p"] > 0.5 and lost.ours["p_two_sided"] < 0.01 and "two-sided p =" in lost.note
    assert claims[f"Q.more_accurate.{full}"].ours["p_two_sided"] == 1.0
    assert claims[f"Q.base_circuit_faithful.{chat}"].verdict == PASS  # 0.70 / 0.80 = 0.875
    assert claims[f"Q.base_circuit_faithful.{lora}"].verdict == FAIL  # 0.60
    assert claims[f"Q.own_circuit_faithful.{base}"].verdict == PASS  # 0.55 / 0.60 = 0.92
    assert claims[f"Q.beats_random.{base}"].verdict == PASS
    assert claims[f"Q.beats_random.{chat}"].verdict == FAIL  # 0.04 is not 0.05 above 0.01
    assert claims[f"Q.complete.{base}"].verdict == PASS and claims[f"Q.complete.{chat}"].verdict == FAIL
    survives = claims[f"Q.base_circuit_survives.{full}"]  # same scores => not the same circuit; measured honestly
    assert survives.verdict in (PASS, FAIL) and 0 <= survives.ours["chance"] <= 1
    assert {c.verdict for c in claims.values()} <= {PASS, FAIL, NOT_APPLICABLE}  # every input is there


def test_base_circuit_survives_counts_shared_nodes(tmp_path):
    base, chat, *_ = DEFAULT_MODELS
    config = write_results(tmp_path, {base: DEFAULT_MODELS[base], chat: DEFAULT_MODELS[chat]})
    res = tmp_path / "results" / "default"
    (res / "circuits" / chat / "circuit.json").write_text((res / "circuits" / base / "circuit.json").read_text())
    files = [res / "circuits" / m / "circuit.json" for m in (base, chat)]
    write_overlap([base, chat], files, res / "circuit_overlap.csv", res / "circuit_overlap.json")
    claim = _by_id(evaluate_claims(Results(res, Study.of(config))))[f"Q.base_circuit_survives.{chat}"]
    assert claim.verdict == PASS and claim.ours["share"] == 1.0


def test_a_study_without_finetuned_models(tmp_path):
    base = next(iter(DEFAULT_MODELS))
    config = write_results(tmp_path, {base: DEFAULT_MODELS[base]})
    claims = _by_id(evaluate_claims(Results(tmp_path / "results" / "default", Study.of(config))))
    assert claims["Q.more_accurate"].verdict == NOT_APPLICABLE
    assert claims[f"Q.own_circuit_faithful.{base}"].verdict in (PASS, FAIL)


def test_markdown_json_and_html_reports(tmp_path):
    config = write_results(tmp_path)
    out = tmp_path / "out"
    root, study = tmp_path / "results" / "default", Study.of(config)
    claims = run_claims(root, study, out / "c.md", out / "c.json", out / "c.html")
    data = json.loads((out / "c.json").read_text())
    assert [c["id"] for c in data["claims"]] == [c.id for c in claims]
    assert set(data["claims"][0]) == {
        "id",
        "kind",
        "statement",
        "source",
        "paper",
        "ours",
        "tolerance",
        "verdict",
        "note",
    }
    assert data["summary"]["headline"][NOT_APPLICABLE] == 67
    md = (out / "c.md").read_text()
    assert md.startswith("# Claims report: study `default`")
    rows = [line for line in md.splitlines() if line.startswith("| Q.") or line.startswith("| H.")]
    assert len(rows) == len(claims) and all(line.count(" | ") == 6 for line in rows)  # pipes in cells are escaped
    assert "mean \\|ΔF\\|" in md
    html = (out / "c.html").read_text()
    assert html.count("<tr>") == len(claims) + 2 and "<b>not applicable</b>" in html
    write_claims(claims, "default", out / "again.md", out / "again.json")
    assert (out / "again.md").read_bytes() == (out / "c.md").read_bytes()


def test_dcm_claims_against_the_chance_floor(tmp_path):
    base, chat, *_ = DEFAULT_MODELS
    sizes = {chat: {"value_fetcher": 2, "pos_transmitter": 0, "pos_detector": 2, "struct_reader": 2}}
    dcm = {
        (base, "pos_transmitter", "positional"): (0.30, 0.05),  # 0.25 above its floor
        (base, "pos_detector", "positional"): (0.09, 0.05),  # 0.04 above: within noise
        (base, "value_fetcher", "object_value"): (0.40, 0.0),
        (base, "struct_reader", "positional"): (0.06, 0.05),  # near its floor, as in the paper
        (chat, "struct_reader", "positional"): (0.20, 0.05),
        **{(m, g, "box_label_value"): (0.06, 0.05) for m in (base, chat) for g in GROUPS},
        (chat, "pos_detector", "box_label_value"): (0.25, 0.05),
    }
    ap = {(base, base, "pos_transmitter", "positional"): (0.28, 0.04)}
    config = write_results(tmp_path, sizes=sizes, dcm=dcm, activation_patching=ap)
    res = tmp_path / "results" / "default"
    claims = _by_id(evaluate_claims(Results(res, Study.of(config))))
    pt = claims[f"Q.dcm_position_transmitter.{base}"]
    assert pt.verdict == PASS and abs(pt.ours["above_floor"] - 0.25) < 1e-12 and pt.ours["patched_into_base"] == 0.28
    assert "Activation patching into Base organism: 0.280 (chance floor 0.040)" in pt.note and "9-13 %" in pt.note
    assert claims[f"Q.dcm_position_detector.{base}"].verdict == FAIL
    assert claims[f"Q.dcm_object_value.{base}"].verdict == PASS
    assert claims[f"Q.dcm_structure_reader_at_floor.{base}"].verdict == PASS
    assert claims[f"Q.dcm_structure_reader_at_floor.{chat}"].verdict == FAIL
    assert claims[f"Q.dcm_position_transmitter.{chat}"].verdict == NOT_APPLICABLE  # an empty group
    assert claims[f"Q.dcm_box_label.{base}"].verdict == PASS
    label = claims[f"Q.dcm_box_label.{chat}"]
    assert label.verdict == FAIL and "PT" not in label.ours  # PT is empty
    assert "tokenization bug" in label.note and "Carrying (test > floor, paired p < 0.05, by ≥ 0.05): PD." in label.note
    # a missing activation-patching file leaves the DCM verdict and says so; a missing DCM file does not
    (res / "activation_patching" / f"{base}.json").unlink()
    (res / "dcm" / chat / "value_fetcher" / "object_value.json").unlink()
    claims = _by_id(evaluate_claims(Results(res, Study.of(config))))
    pt = claims[f"Q.dcm_position_transmitter.{base}"]
    assert pt.verdict == PASS and pt.ours["patched_into_base"] is None and "not computed (needs" in pt.note
    vf = claims[f"Q.dcm_object_value.{chat}"]
    assert vf.verdict == NOT_COMPUTED and f"results/default/dcm/{chat}/value_fetcher/object_value.json" in vf.note


def mixed(base: str, gained: int, lost: int) -> str:
    """Outcomes on the same records as ``base`` with ``gained`` wrong ones made right and ``lost`` right ones
    made wrong (a paired test sees both directions)."""
    out = list(base)
    right, wrong = [i for i, c in enumerate(base) if c == "1"], [i for i, c in enumerate(base) if c == "0"]
    for i in wrong[:gained]:
        out[i] = "1"
    for i in right[:lost]:
        out[i] = "0"
    return "".join(out)


def _set_cmap(res, ft: str, base: str, group: str, outcomes: str) -> None:
    """Rewrite one output row of a CMAP result with these per-record outcomes."""
    path = res / "cmap" / f"{ft}__{base}.json"
    data = json.loads(path.read_text())
    row = data["output"][group]
    row["outcomes"], row["correct"] = outcomes, outcomes.count("1")
    row["accuracy"] = row["correct"] / len(outcomes)
    path.write_text(json.dumps(data))


def test_cmap_claims_are_paired_tests_against_the_base(tmp_path):
    base, chat, lora, full, *_ = DEFAULT_MODELS
    sizes = {lora: {"value_fetcher": 0, "pos_transmitter": 0, "pos_detector": 1, "struct_reader": 1}}
    cmap = {(chat, "value_fetcher"): 0.75, (full, "value_fetcher"): 0.70, (chat, "full_circuit"): 0.80,
            (chat, "pos_detector"): 0.60, (chat, "struct_reader"): 0.60}  # fmt: skip
    accuracy = {base: 0.60, chat: 0.80, lora: 0.70, full: 0.55}
    config = write_results(tmp_path, accuracy=accuracy, sizes=sizes, cmap=cmap)
    res = tmp_path / "results" / "default"
    own = json.loads((res / "cmap" / f"{chat}__{base}.json").read_text())["target_accuracy"]["outcomes"]
    _set_cmap(res, chat, base, "pos_transmitter", mixed(own, gained=10, lost=5))  # +0.01: 10 vs 5, p = 0.15
    _set_cmap(res, chat, base, "struct_reader", mixed(own, gained=30, lost=5))  # a significant lift: claim fails
    claims = _by_id(evaluate_claims(Results(res, Study.of(config))))
    vf = claims[f"Q.cmap_lifts_base.{chat}.value_fetcher"]
    assert vf.verdict == PASS and abs(vf.ours["gap_closed"] - 0.75) < 1e-9 and "closes 75% of the gap" in vf.note
    assert vf.ours["p_lift"] < 1e-10 and "McNemar" in vf.note
    pt = claims[f"Q.cmap_lifts_base.{chat}.pos_transmitter"]
    assert pt.verdict == FAIL and 0.1 < pt.ours["p_lift"] < 0.2  # higher, not significantly
    assert "10 right only for" in pt.note and "5 only for" in pt.note
    assert claims[f"Q.cmap_lifts_base.{lora}.value_fetcher"].verdict == NOT_APPLICABLE  # nothing patched
    lifted = claims[f"Q.cmap_lifts_base.{full}.value_fetcher"]  # lifted, but the fine-tune is worse than the base
    assert lifted.verdict == PASS and lifted.ours["gap_closed"] is None and "no gap to close" in lifted.note
    # the full circuit reaches the fine-tuned accuracy (0.80 = 0.80): lifted, not below the fine-tune
    whole = claims[f"Q.cmap_full_circuit.{chat}"]
    assert whole.verdict == PASS and whole.ours["p_below_finetuned"] >= 0.05
    # the detector does not lift the base (0.60 = 0.60); the reader does, significantly: that claim fails
    assert claims[f"Q.cmap_no_lift.{chat}.pos_detector"].verdict == PASS
    reader = claims[f"Q.cmap_no_lift.{chat}.struct_reader"]
    assert reader.verdict == FAIL and reader.ours["p_lift"] < 1e-4
    # a full circuit below the fine-tune, significantly, does not "bring the base to" its accuracy
    _set_cmap(res, chat, base, "full_circuit", mixed(own, gained=60, lost=0))  # 0.72 against 0.80
    assert _by_id(evaluate_claims(Results(res, Study.of(config))))[f"Q.cmap_full_circuit.{chat}"].verdict == FAIL
    # patched below the base: the wrong direction is not a lift
    _set_cmap(res, chat, base, "value_fetcher", mixed(own, gained=0, lost=40))
    claim = _by_id(evaluate_claims(Results(res, Study.of(config))))[f"Q.cmap_lifts_base.{chat}.value_fetcher"]
    assert claim.verdict == FAIL and claim.ours["p_lift"] == 1.0
    (res / "cmap" / f"{chat}__{base}.json").unlink()
    claim = _by_id(evaluate_claims(Results(res, Study.of(config))))[f"Q.cmap_lifts_base.{chat}.value_fetcher"]
    assert claim.verdict == NOT_COMPUTED and f"cmap/{chat}__{base}.json" in claim.note
    one = write_results(tmp_path / "one", {base: DEFAULT_MODELS[base]})
    claims = _by_id(evaluate_claims(Results(tmp_path / "one" / "results" / "default", Study.of(one))))
    assert claims["Q.cmap_lifts_base"].verdict == NOT_APPLICABLE


def test_fine_tuned_accuracy_claims_need_a_significant_paired_difference(tmp_path):
    base, chat, *_ = DEFAULT_MODELS
    config = write_results(tmp_path, {base: DEFAULT_MODELS[base], chat: DEFAULT_MODELS[chat]},
                           accuracy={base: 0.60, chat: 0.60})  # fmt: skip
    res = tmp_path / "results" / "default"
    path = res / "eval" / f"{chat}.json"
    record = json.loads(path.read_text())
    base_outcomes = json.loads((res / "eval" / f"{base}.json").read_text())["outcomes"]
    for gained, lost, verdict in ((40, 10, PASS), (12, 8, FAIL), (5, 40, FAIL)):
        record["outcomes"] = mixed(base_outcomes, gained, lost)
        record["accuracy"] = record["outcomes"].count("1") / 500
        path.write_text(json.dumps(record))
        claim = _by_id(evaluate_claims(Results(res, Study.of(config))))[f"Q.more_accurate.{chat}"]
        assert claim.verdict == verdict, (gained, lost, claim.note)
        assert f"{gained} right only for" in claim.note
    del record["outcomes"]
    path.write_text(json.dumps(record))
    claim = _by_id(evaluate_claims(Results(res, Study.of(config))))[f"Q.more_accurate.{chat}"]
    assert claim.verdict == NOT_COMPUTED and "per-record outcomes" in claim.note


def test_knockout_claims_compare_early_layers_with_the_random_control(tmp_path):
    base, chat, *_ = DEFAULT_MODELS
    knockout = {
        (base, "last_to_query_label"): [0.10, 0.20, 0.60, 0.60],
        (base, "last_to_random"): [0.58, 0.58, 0.58, 0.10],  # only s < 2 counts
        (base, "query_label_to_prev_query_label"): [0.55, 0.55, 0.1, 0.1],
        (base, "query_label_to_random"): [0.58, 0.58, 0.58, 0.58],
    }
    config = write_results(tmp_path, {base: DEFAULT_MODELS[base], chat: DEFAULT_MODELS[chat]}, layers=4,
                           knockout=knockout)  # fmt: skip
    res = tmp_path / "results" / "default"
    (res / "knockout" / f"{chat}.json").unlink()
    claims = _by_id(evaluate_claims(Results(res, Study.of(config))))
    ql = claims[f"Q.knockout.last_to_query_label.{base}"]
    assert ql.verdict == PASS and abs(ql.ours["blocked"] - 0.15) < 1e-9 and abs(ql.ours["random"] - 0.58) < 1e-9
    assert "s = 0..1" in ql.note
    assert claims[f"Q.knockout.query_label_to_prev_query_label.{base}"].verdict == FAIL  # 0.03 below: not 0.05
    missing = claims[f"Q.knockout.last_to_correct_object.{chat}"]
    assert missing.verdict == NOT_COMPUTED and f"knockout/{chat}.json" in missing.note
