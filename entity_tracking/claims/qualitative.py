"""The paper's qualitative claims, tested on any study's models: one function per claim in ``QUALITATIVE``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from entity_tracking.circuits import GROUPS
from entity_tracking.claims.results import (
    ALPHA,
    COMPLETE,
    FAIL,
    FAITHFUL,
    FLOOR_NOTE,
    GROUP_NAMES,
    MARGIN,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    PASS,
    SR_NOTE,
    SURVIVES,
    Claim,
    Missing,
    Results,
    _notes,
    _selected,
    paired_note,
    unsupported,
)
from entity_tracking.layout import pair_name, relative
from entity_tracking.stats import paired_test, sign_test

BOX_LABEL_NOTE = (
    "The original's box-label label could never be matched (a tokenization bug), so its 0.0 everywhere measured "
    "nothing; ours tokenizes the label as a word and re-measures it."
)


def _check(claim: Claim, compute: Callable[[], tuple[Any, bool | None, str]]) -> Claim:
    """Fill ``ours``, the verdict and the note from ``compute() -> (ours, holds, note)``; holds None: n/a."""
    try:
        claim.ours, holds, claim.note = compute()
        claim.verdict = NOT_APPLICABLE if holds is None else PASS if holds else FAIL
    except Missing as missing:
        claim.verdict, claim.note = NOT_COMPUTED, str(missing)
    return claim


def _no_finetuned(claim_id: str, statement: str, source: str) -> list[Claim]:
    note = "This study has no fine-tuned model with a base_model."
    return [Claim(claim_id, "qualitative", statement, source, verdict=NOT_APPLICABLE, note=note)]


def finetuned_more_accurate(r: Results) -> list[Claim]:
    """Fine-tuned models track entities better than their base model: a paired test on the same
    evaluation prompts, significant in that direction. The two-sided p of the change, whatever its sign, is
    reported beside it (a loss is a finding too)."""
    source, ref = "circuit_eval.ipynb", "Vicuna 0.67, Goat 0.82, FLoat 0.82 against Llama 0.66"
    if not r.finetuned():
        return _no_finetuned("Q.more_accurate", "Fine-tuned models are more accurate than their base", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool, str]:
            a, b = r.accuracy(ft), r.accuracy(base)
            tuned, own = r.outcomes(a, relative("eval", model=ft)), r.outcomes(b, relative("eval", model=base))
            test, either = paired_test(tuned, own, "greater"), paired_test(tuned, own, "two-sided")
            ours = {"finetuned": a["accuracy"], "base": b["accuracy"], "difference": test["difference"],
                    "p": test["p_value"], "p_two_sided": either["p_value"]}  # fmt: skip
            holds = test["difference"] > 0 and test["p_value"] < ALPHA
            change = f" A change in either direction: two-sided p = {either['p_value']:.2g}."
            return ours, holds, paired_note(test, r.label(ft), r.label(base)) + change

        statement = f"{r.label(ft)} is more accurate than its base {r.label(base)}"
        claim = Claim(f"Q.more_accurate.{ft}", "qualitative", statement, source, ref,
                      tolerance=f"paired p < {ALPHA}, difference > 0")  # fmt: skip
        out.append(_check(claim, compute))
    return out


def base_circuit_faithful_on_finetuned(r: Results) -> list[Claim]:
    """The base model's circuit explains the fine-tuned models too."""
    source, ref = "circuit_eval.ipynb", "Llama circuit: Vicuna 0.97, Goat 0.89, FLoat 0.88"
    if not r.finetuned():
        return _no_finetuned("Q.base_circuit_faithful", "The base circuit is faithful on fine-tuned models", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool | None, str]:
            f = r.faithfulness(base, ft)
            ours = {k: f[k] for k in ("faithfulness", "circuit_accuracy", "model_accuracy", "random_accuracy_mean")}
            why = unsupported(r, base)
            if why:
                return ours, None, why
            return ours, f["faithfulness"] is not None and f["faithfulness"] >= FAITHFUL, ""

        statement = f"{r.label(base)}'s circuit is faithful on {r.label(ft)}"
        claim = Claim(f"Q.base_circuit_faithful.{ft}", "qualitative", statement, source, ref, tolerance=f"≥ {FAITHFUL}")
        out.append(_check(claim, compute))
    return out


def own_circuit_faithful(r: Results) -> list[Claim]:
    """Each model's own circuit explains the model."""
    out = []
    for m in r.models:

        def compute(m: str = m) -> tuple[Any, bool | None, str]:
            f = r.faithfulness(m, m)
            ours = {k: f[k] for k in ("faithfulness", "circuit_accuracy", "model_accuracy")}
            sizes = "circuit sizes " + "/".join(str(f["sizes"][g]) for g in GROUPS)
            why = unsupported(r, m)
            if why:
                return ours, None, f"{why} ({sizes})"
            return ours, f["faithfulness"] is not None and f["faithfulness"] >= FAITHFUL, sizes

        claim = Claim(f"Q.own_circuit_faithful.{m}", "qualitative", f"{r.label(m)}'s own circuit is faithful on it",
                      "circuit_eval.ipynb", "Llama 1.00, Goat 0.99", tolerance=f"≥ {FAITHFUL}")  # fmt: skip
        out.append(_check(claim, compute))
    return out


def circuits_beat_random(r: Results) -> list[Claim]:
    """A circuit does better than random circuits of the same group sizes."""
    out = []
    for m in r.models:

        def compute(m: str = m) -> tuple[Any, bool | None, str]:
            f = r.faithfulness(m, m)
            best = max(f["random_accuracies"])
            ours = {"circuit_accuracy": f["circuit_accuracy"], "random_best": best,
                    "random_mean": f["random_accuracy_mean"]}  # fmt: skip
            why = unsupported(r, m)
            if why:
                return ours, None, why
            return ours, f["circuit_accuracy"] > best + MARGIN, f"{len(f['random_accuracies'])} random circuits"

        statement = f"{r.label(m)}'s own circuit beats every random circuit of its group sizes"
        claim = Claim(f"Q.beats_random.{m}", "qualitative", statement, "circuit_eval.ipynb",
                      "circuits 0.66-0.81, random 0.00-0.01", tolerance=f"> best random + {MARGIN}")  # fmt: skip
        out.append(_check(claim, compute))
    return out


def circuits_complete(r: Results) -> list[Claim]:
    """Removing any part of the circuit hurts circuit and model alike."""
    out = []
    for m in r.models:

        def compute(m: str = m) -> tuple[Any, bool | None, str]:
            c = r.completeness(m)
            diff = c["random"]["diff"]
            groups = ", ".join(f"{g} {c['groups'][g]['diff']:.2f}" for g in GROUPS)
            ours = {"mean_abs_diff": diff["mean"], "std": diff["std"], "draws": len(c["random_draws"])}
            why = unsupported(r, m)
            if why:
                return ours, None, why
            return ours, diff["mean"] <= COMPLETE, f"|ΔF| with K = a whole group: {groups}"

        statement = f"{r.label(m)}'s circuit is complete: F(C \\ K) tracks F(M \\ K) for random K"
        ref = "mean |ΔF|: Llama 0.10, Goat 0.06, FLoat 0.09"
        claim = Claim(
            f"Q.complete.{m}", "qualitative", statement, "completeness.ipynb", ref, tolerance=f"mean |ΔF| ≤ {COMPLETE}"
        )
        out.append(_check(claim, compute))
    return out


def base_circuit_survives(r: Results) -> list[Claim]:
    """The fine-tuned model's circuit contains most of the base circuit (overlap); the note puts the
    two models' candidate overlap beside the overlap a resample of the base's own prompts gives."""
    source, ref = "circuit_eval.ipynb, overlap", "75 % of Llama's circuit is in FLoat's, 75 % in Goat's"
    if not r.finetuned():
        return _no_finetuned("Q.base_circuit_survives", "Fine-tuned circuits contain the base circuit", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool | None, str]:
            row = r.overlap(base, ft)
            b, f, n = r.circuit(base), r.circuit(ft), r.heads_per_model(ft)
            chance = sum(len(b[g]) * len(f[g]) for g in GROUPS) / n / max(row["size_a"], 1)
            share = row["precision"]
            ours = {"share": share, "intersection": row["intersection"], "base_size": row["size_a"], "chance": chance}
            resampled = ""
            if row.get("resampling_precision_mean") is not None and row.get("candidate_precision") is not None:
                ours |= {"candidate_share": row["candidate_precision"],
                         "resampling_share": row["resampling_precision_mean"]}  # fmt: skip
                resampled = (
                    f" Candidates: {row['candidate_precision']:.0%} of {r.label(base)}'s are {r.label(ft)}'s; a "
                    f"resample of {r.label(base)}'s own prompts keeps {row['resampling_precision_mean']:.0%} "
                    f"[{row['resampling_precision_low']:.0%}, {row['resampling_precision_high']:.0%}]."
                )
            why = unsupported(r, base)
            if why:
                return ours, None, why + resampled
            holds = share is not None and share >= SURVIVES and share > chance
            return ours, holds, f"{r.label(ft)}'s circuit has {row['size_b']} nodes.{resampled}"

        statement = f"{r.label(ft)}'s circuit contains most of {r.label(base)}'s circuit (same groups)"
        claim = Claim(f"Q.base_circuit_survives.{ft}", "qualitative", statement, source, ref,
                      tolerance=f"share ≥ {SURVIVES} and > chance")  # fmt: skip
        out.append(_check(claim, compute))
    return out


SHORT = {"value_fetcher": "VF", "pos_transmitter": "PT", "pos_detector": "PD", "struct_reader": "SR"}
DCM_PAPER = {  # the paper's Llama circuit: test accuracy, heads selected / group size
    ("pos_transmitter", "positional"): "Llama circuit 0.362 (5/7 heads; the original's floor ~0.13)",
    ("pos_detector", "positional"): "Llama circuit 0.412 (14/20; the original's floor ~0.13)",
    ("value_fetcher", "object_value"): "Llama circuit 0.468 (40/40; floor ~0.01)",
    ("struct_reader", "positional"): "Llama circuit 0.140 (3/5), at the original's floor ~0.13",
}


def _dcm_row(r: Results, circuit: str, group: str, desideratum: str) -> tuple[dict[str, Any], bool]:
    """DCM's test accuracy, chance floor, paired test and selected heads of one group (a claim's ``ours``), and
    whether the group carries the desideratum: test above floor significantly (paired) and by ≥ MARGIN."""
    res = r.dcm(circuit, group, desideratum)
    where = relative("dcm", circuit=circuit, group=group, desideratum=desideratum)
    test, floor = res["test_accuracy"], res["chance_floor"]
    paired = paired_test(r.outcomes(res, where, "test_outcomes"), r.outcomes(res, where, "floor_outcomes"))
    ours = {"test_accuracy": test, "chance_floor": floor, "above_floor": test - floor, "p": paired["p_value"],
            "selected": _selected(res)}  # fmt: skip
    return ours, test - floor >= MARGIN and paired["p_value"] < ALPHA


def _patched_into_base(r: Results, circuit: str, group: str, desideratum: str) -> tuple[float | None, str]:
    """Activation patching of the group's DCM heads into the base model: its mean accuracy and a note."""
    base = r.base_of(r.dcm_circuits()[circuit])
    try:
        cell = r.field(relative("activation_patching", model=base), "circuits", circuit, group, desideratum)
    except Missing as missing:
        return None, f"Activation patching into {r.label(base)}: not computed ({missing})."
    mean, floor = cell["accuracy"]["mean"], cell["chance_floor_mean"]
    return mean, f"Activation patching into {r.label(base)}: {mean:.3f} (chance floor {floor:.3f})."


CARRIES = f"test > floor, paired p < {ALPHA}, by ≥ {MARGIN}"


def _dcm_claims(
    r: Results, name: str, group: str, desideratum: str, statement: str, near_floor: bool, note: str = ""
) -> list[Claim]:
    """One claim per DCM circuit: the group carries the desideratum (or, ``near_floor``, does not)."""
    out = []
    for circuit in r.dcm_circuits():

        def compute(circuit: str = circuit) -> tuple[Any, bool | None, str]:
            why = unsupported(r, circuit, (group,))
            ours, carries = _dcm_row(r, circuit, group, desideratum)
            if why:
                return ours, None, why
            ours["patched_into_base"], patched = _patched_into_base(r, circuit, group, desideratum)
            return ours, (not carries) if near_floor else carries, _notes(note, patched)

        criterion = f"not ({CARRIES})" if near_floor else CARRIES
        text = statement.format(group=GROUP_NAMES[group].capitalize(), circuit=r.label(circuit))
        claim = Claim(f"Q.{name}.{circuit}", "qualitative", text, "DCM.py", DCM_PAPER[(group, desideratum)],
                      tolerance=criterion)  # fmt: skip
        out.append(_check(claim, compute))
    return out


def groups_carry_their_information(r: Results) -> list[Claim]:
    """DCM finds the information each group is named for: position in the position transmitter
    and detector, the object value in the value fetcher; the structure reader stays at its positional floor."""
    carries = "{group} of {circuit}'s circuit carries position (DCM positional above its chance floor)"
    return [
        *_dcm_claims(r, "dcm_position_transmitter", "pos_transmitter", "positional", carries, False, FLOOR_NOTE),
        *_dcm_claims(r, "dcm_position_detector", "pos_detector", "positional", carries, False, FLOOR_NOTE),
        *_dcm_claims(r, "dcm_object_value", "value_fetcher", "object_value",
                     "{group} of {circuit}'s circuit carries the object value (DCM object_value above its floor)",
                     False),
        *_dcm_claims(r, "dcm_structure_reader_at_floor", "struct_reader", "positional",
                     "{group} of {circuit}'s circuit is near its floor on positional (DCM)", True,
                     _notes(FLOOR_NOTE, SR_NOTE)),
    ]  # fmt: skip


def box_label_value(r: Results) -> list[Claim]:
    """The paper read 'no group carries box-label value' off a table of zeros that its label bug made;
    re-measured here, per circuit: does any group (with signal) carry it above its floor?"""
    out = []
    for circuit in r.dcm_circuits():

        def compute(circuit: str = circuit) -> tuple[Any, bool | None, str]:
            usable = [g for g in GROUPS if unsupported(r, circuit, (g,)) is None]
            rows = {g: _dcm_row(r, circuit, g, "box_label_value") for g in usable}
            ours = {SHORT[g]: row["above_floor"] for g, (row, _) in rows.items()}
            if not rows:
                return ours, None, unsupported(r, circuit) or "No group to test."
            carrying = [SHORT[g] for g, (_, carries) in rows.items() if carries]
            detail = "; ".join(
                f"{SHORT[g]} {row['test_accuracy']:.3f} (floor {row['chance_floor']:.3f}, p {row['p']:.2g}, "
                f"{row['selected']} heads)"
                for g, (row, _) in rows.items()
            )
            skipped = [SHORT[g] for g in GROUPS if g not in usable]
            left = f"Not tested (no signal or empty): {', '.join(skipped)}." if skipped else ""
            found = f"Carrying ({CARRIES}): {', '.join(carrying)}." if carrying else "No group carries it."
            return ours, not carrying, _notes(BOX_LABEL_NOTE, f"Test accuracy: {detail}.", found, left)

        statement = f"No group of {r.label(circuit)}'s circuit carries box-label value (DCM box_label_value)"
        claim = Claim(f"Q.dcm_box_label.{circuit}", "qualitative", statement, "DCM.py",
                      "0.0 in every group (a label bug)", tolerance=f"every group: not ({CARRIES})")  # fmt: skip
        out.append(_check(claim, compute))
    return out


CMAP_GROUPS = ("value_fetcher", "pos_transmitter")
CMAP_SOURCE = "cmap.ipynb"
CMAP_REF = "Goat -> Llama: VF 0.82, PT 0.78; FLoat -> Llama: VF 0.82, PT 0.74; Llama 0.66, FT 0.82"


def _cmap_rows(r: Results, ft: str, base: str, group: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A CMAP pair's output-patching row of ``group`` (or ``full_circuit``) with its paired tests against the base
    (``lift``: patched more accurate) and against the fine-tuned model (``below``: patched less accurate), the
    claim's ``ours``, and why the claim is not applicable (None when it is)."""
    rel = relative("cmap", pair=pair_name(ft, base))
    res = r.json(rel)
    row, own, src = res["output"][group], res["target_accuracy"], res["source_accuracy"]
    patched = r.outcomes(row, rel)
    lift = paired_test(patched, r.outcomes(own, rel), "greater")
    below = paired_test(patched, r.outcomes(src, rel), "less")
    gap = src["accuracy"] - own["accuracy"]
    ours = {"patched": row["accuracy"], "base": own["accuracy"], "finetuned": src["accuracy"], "heads": row["heads"],
            "p_lift": lift["p_value"], "p_below_finetuned": below["p_value"],
            "gap_closed": lift["difference"] / gap if gap > 0 else None}  # fmt: skip
    groups = GROUPS if group == "full_circuit" else (group,)
    why = unsupported(r, res.get("circuit", ft), groups)
    if why is None and not row["patched"]:
        why = f"Not applicable: no heads to patch in the fine-tuned circuit's {GROUP_NAMES.get(group, group)} set."
    closed = (f"closes {lift['difference'] / gap:.0%} of the gap to the fine-tuned accuracy" if gap > 0 else
              "the fine-tuned model is not more accurate than its base here, so there is no gap to close")  # fmt: skip
    return ours, {"lift": lift, "below": below, "closed": closed}, why


def cmap_lifts_base(r: Results) -> list[Claim]:
    """Patching the fine-tuned model's value fetcher or position transmitter outputs into its base lifts the
    base's accuracy (the paper: Goat -> Llama VF 0.82, PT 0.78 against 0.66): a paired test, one-sided."""
    if not r.cmap_pairs():
        note = "No CMAP pair patches a fine-tuned model into its base_model in this study."
        statement = "CMAP of the value fetcher and position transmitter lifts the base"
        return [Claim("Q.cmap_lifts_base", "qualitative", statement, CMAP_SOURCE, CMAP_REF, verdict=NOT_APPLICABLE,
                      note=note)]  # fmt: skip
    out = []
    for ft, base in r.cmap_pairs():
        for group in CMAP_GROUPS:

            def compute(ft: str = ft, base: str = base, group: str = group) -> tuple[Any, bool | None, str]:
                ours, tests, why = _cmap_rows(r, ft, base, group)
                if why:
                    return ours, None, why
                lift = tests["lift"]
                note = f"Lift {lift['difference']:+.3f} ({tests['closed']}). " + paired_note(
                    lift, f"{r.label(base)} patched", r.label(base)
                )
                return ours, lift["difference"] > 0 and lift["p_value"] < ALPHA, note

            statement = f"Patching {r.label(ft)}'s {GROUP_NAMES[group]} outputs into {r.label(base)} lifts its accuracy"
            claim = Claim(f"Q.cmap_lifts_base.{ft}.{group}", "qualitative", statement, CMAP_SOURCE, CMAP_REF,
                          tolerance=f"patched > base, paired p < {ALPHA}")  # fmt: skip
            out.append(_check(claim, compute))
    return out


def cmap_full_circuit_reaches_finetuned(r: Results) -> list[Claim]:
    """Patching the whole fine-tuned circuit brings the base to the fine-tuned accuracy (the paper: 0.82 = FT):
    it lifts the base significantly and is not significantly below the fine-tuned model."""
    out = []
    for ft, base in r.cmap_pairs():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool | None, str]:
            ours, tests, why = _cmap_rows(r, ft, base, "full_circuit")
            if why:
                return ours, None, why
            lift, below = tests["lift"], tests["below"]
            holds = lift["difference"] > 0 and lift["p_value"] < ALPHA and below["p_value"] >= ALPHA
            note = (f"Lift {lift['difference']:+.3f} ({tests['closed']}), p = {lift['p_value']:.2g}; below "
                    f"{r.label(ft)} by {-below['difference']:+.3f}, p = {below['p_value']:.2g}.")  # fmt: skip
            return ours, holds, note

        statement = f"Patching {r.label(ft)}'s whole circuit into {r.label(base)} brings it to {r.label(ft)}'s accuracy"
        claim = Claim(f"Q.cmap_full_circuit.{ft}", "qualitative", statement, CMAP_SOURCE,
                      "Goat -> Llama 0.82, FLoat -> Llama 0.82 (= the fine-tuned accuracy)",
                      tolerance=f"lift p < {ALPHA}; not below the fine-tuned model (p ≥ {ALPHA})")  # fmt: skip
        out.append(_check(claim, compute))
    return out


def cmap_detector_reader_no_lift(r: Results) -> list[Claim]:
    """Patching the fine-tuned position detector or structure reader does not lift the base (the paper:
    Goat -> Llama PD 0.62, SR 0.65 against 0.66): the paired test finds no significant lift."""
    out = []
    for ft, base in r.cmap_pairs():
        for group in ("pos_detector", "struct_reader"):

            def compute(ft: str = ft, base: str = base, group: str = group) -> tuple[Any, bool | None, str]:
                ours, tests, why = _cmap_rows(r, ft, base, group)
                if why:
                    return ours, None, why
                lift = tests["lift"]
                return ours, lift["p_value"] >= ALPHA, paired_note(lift, f"{r.label(base)} patched", r.label(base))

            statement = f"Patching {r.label(ft)}'s {GROUP_NAMES[group]} outputs into {r.label(base)} does not lift it"
            claim = Claim(f"Q.cmap_no_lift.{ft}.{group}", "qualitative", statement, CMAP_SOURCE,
                          "Goat -> Llama: PD 0.62, SR 0.65; FLoat -> Llama: PD 0.56, SR 0.65; Llama 0.66",
                          tolerance=f"no significant lift (paired p ≥ {ALPHA})")  # fmt: skip
            out.append(_check(claim, compute))
    return out


# knockout claims: (blocked condition, its random control, the paper's Llama numbers)
KNOCKOUT_CLAIMS = (
    ("last_to_query_label", "last_to_random", "last -> query label 0.35-0.39 for s ≤ 11; last -> random 0.62-0.66"),
    ("query_label_to_prev_query_label", "query_label_to_random",
     "query label -> previous query label 0.05-0.19 for s ≤ 7; -> random 0.61-0.66"),
    ("last_to_correct_object", "last_to_random", "last -> correct object 0.04 for s ≤ 15; last -> random 0.62-0.66"),
)  # fmt: skip
KNOCKOUT_NOTE = (
    "Random positions exclude the start token, the query label and every token after it, the correct object and "
    "the query label's earlier occurrence (the original's randint could hit BOS, the answer or the query)."
)


def knockout_information_flow(r: Results) -> list[Claim]:
    """Blocking attention along the paper's information paths in the early layers hurts more than
    blocking it to a random position: per prompt, the mean accuracy over start layers s < L/2 (rounded up),
    blocked minus random; a sign test that these lean below 0, and a mean below -MARGIN."""
    out = []
    for model in r.knockout_models():
        for blocked, control, ref in KNOCKOUT_CLAIMS:

            def compute(model: str = model, blocked: str = blocked, control: str = control) -> tuple[Any, bool, str]:
                rel = relative("knockout", model=model)
                early = math.ceil(r.field(rel, "layers") / 2)

                def per_prompt(condition: str) -> np.ndarray:
                    curve = r.field(rel, "conditions", condition, "curve")[:early]
                    return np.mean([r.outcomes(row, rel) for row in curve], axis=0)

                a, b = per_prompt(blocked), per_prompt(control)
                test = sign_test(a - b, "less")
                ours = {"blocked": float(a.mean()), "random": float(b.mean()),
                        "model": r.field(rel, "no_knockout", "accuracy"), "p": test["p_value"]}  # fmt: skip
                note = (f"Means over first blocked layers s = 0..{early - 1}, per prompt: blocked below random on "
                        f"{test['below']} prompts, above on {test['above']}; sign test p = {test['p_value']:.2g}. "
                        f"{KNOCKOUT_NOTE}")  # fmt: skip
                holds = test["p_value"] < ALPHA and ours["blocked"] < ours["random"] - MARGIN
                return ours, holds, note

            frm, to = blocked.split("_to_")
            statement = (f"In {r.label(model)}, blocking attention {frm.replace('_', ' ')} -> {to.replace('_', ' ')} "
                         "in the early layers hurts more than blocking it to a random position")  # fmt: skip
            claim = Claim(f"Q.knockout.{blocked}.{model}", "qualitative", statement, "attn_knockout.ipynb", ref,
                          tolerance=f"sign test p < {ALPHA}; mean accuracy < random's - {MARGIN}")  # fmt: skip
            out.append(_check(claim, compute))
    return out


QUALITATIVE: list[Callable[[Results], list[Claim]]] = [
    finetuned_more_accurate,
    base_circuit_faithful_on_finetuned,
    own_circuit_faithful,
    circuits_beat_random,
    circuits_complete,
    base_circuit_survives,
    groups_carry_their_information,
    box_label_value,
    cmap_lifts_base,
    cmap_full_circuit_reaches_finetuned,
    cmap_detector_reader_no_lift,
    knockout_information_flow,
]
