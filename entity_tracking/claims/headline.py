"""The paper's headline numbers beside ours (paper study only): :class:`Headline` rows in ``HEADLINES``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from entity_tracking import paper
from entity_tracking.circuits import GROUPS, top_heads
from entity_tracking.claims.results import (
    FAIL,
    FLOOR_NOTE,
    LORA_NOTE,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    PASS,
    SR_NOTE,
    Claim,
    Missing,
    Results,
    _notes,
    _selected,
    unsupported,
)
from entity_tracking.layout import pair_name, relative


def close(tol: float) -> Callable[[Any, Any], bool]:
    return lambda ours, ref: abs(ours - ref) <= tol + 1e-12


def close_relative(tol: float) -> Callable[[Any, Any], bool]:
    return lambda ours, ref: abs(ours["total"] - ref["total"]) <= tol * ref["total"]


def same_head(tol: float) -> Callable[[Any, Any], bool]:
    return lambda ours, ref: ours["head"] == ref["head"] and abs(ours["score"] - ref["score"]) <= tol + 1e-12


@dataclass(frozen=True)
class Headline:
    """A number of the paper and how to measure ours: ``measure(results, key)`` (key: a model, a group...)."""

    id: str
    statement: str
    source: str
    paper: Any
    tolerance: str
    check: Callable[[Any, Any], bool]
    measure: Callable[[Results, Any], Any]
    key: Any = None
    note: str = ""
    needs: tuple[Any, ...] | None = None  # unsupported()'s arguments: (circuit, groups[, needs their heads])


def _family(
    name: str,
    statement: str,
    source: str,
    refs: dict[Any, Any],
    tolerance: str,
    check: Callable[[Any, Any], bool],
    measure: Callable[[Results, Any], Any],
    notes: dict[Any, str] | None = None,
    needs: Callable[[Any], tuple[Any, ...] | None] | None = None,
) -> list[Headline]:
    """One row per key of ``refs``; ``statement`` may name ``{model}`` (the key's paper name) or ``{key}``.
    ``needs(key)``: the circuit and groups the row needs signal in (else it is not applicable)."""
    notes = notes or {}
    return [
        Headline(
            f"H.{name}.{key}",
            statement.format(model=paper.NAMES.get(key, key), key=key),
            source,
            ref,
            tolerance,
            check,
            measure,
            key,
            notes.get(key, notes.get("*", "")),
            needs(key) if needs else None,
        )
        for key, ref in refs.items()
    ]


def _sizes(r: Results, model: str) -> dict[str, Any]:
    groups = [len(heads) for heads in r.circuit(model).values()]
    return {"total": sum(groups), "groups": groups}


def _strongest(r: Results, group: str) -> dict[str, Any]:
    score = r.path_patching(paper.LLAMA)[f"{group}.prob"]
    head = top_heads(score, 1)[0]
    return {"head": list(head), "score": float(score[head])}


def _faithfulness_of(circuit: str, field: str) -> Callable[[Results, str], Any]:
    return lambda r, model: r.faithfulness(circuit, model)[field]


def close_field(tol: float, field: str) -> Callable[[Any, Any], bool]:
    return lambda ours, ref: abs(ours[field] - ref) <= tol + 1e-12


def original_floor(r: Results, value: float, desideratum: str, model: str) -> float:
    """Our positional accuracy as the original would have measured it: its sampling let a share 1/B of the pairs
    (B boxes) query the base's own box, where the label is the base's own answer and the model is right about as
    often as its task accuracy a: ``(1 - 1/B) * ours + a / B``. Other desiderata are unchanged."""
    if desideratum != "positional":
        return value
    return (1 - 1 / r.boxes) * value + r.accuracy(model)["accuracy"] / r.boxes


def _dcm_llama(r: Results, key: str) -> dict[str, Any]:
    group, desideratum = key.split(".")
    res = r.dcm(paper.LLAMA, group, desideratum)
    test = res["test_accuracy"]
    return {"test_accuracy": test, "comparable": original_floor(r, test, desideratum, paper.LLAMA),
            "chance_floor": res["chance_floor"], "selected": _selected(res)}  # fmt: skip


def _ap_llama(r: Results, key: str) -> dict[str, Any]:
    group, desideratum, model = key.split(".")
    cell = r.field(relative("activation_patching", model=model), "circuits", paper.LLAMA, group, desideratum)
    acc_ = cell["accuracy"]
    return {"accuracy": acc_["mean"], "comparable": original_floor(r, acc_["mean"], desideratum, model),
            "std": acc_["std"], "chance_floor": cell["chance_floor_mean"]}  # fmt: skip


def _cmap_llama(r: Results, key: str) -> dict[str, Any]:
    source, group = key.split(".")
    rel = relative("cmap", pair=pair_name(source, paper.LLAMA))
    row = r.field(rel, "output", "full_circuit" if group == "full" else group)
    return {"accuracy": row["accuracy"], "heads": row["heads"]}


COMPARABLE_NOTE = (
    "Checked on 'comparable' = (1 - 1/B) * ours + a / B (B boxes, a the model's task accuracy): our accuracy with "
    "the original's share 1/B of pairs that ask for the base's own answer, where the model is right at about its "
    "task accuracy."
)
PUBLISHED_DCM = "Ours is DCM on our Llama circuit; dcm/published-llama/ holds it on the original's circuit."
CMAP_NOTE = "Head sets as in the paper: the fine-tuned circuit's DCM heads (VF object, PT/PD positional), whole SR."
KO_OBJECT = "last_to_correct_object"

UNROUNDED = "Ours is the unrounded ratio; the paper's, a ratio of accuracies rounded to 0.01."
GOAT_CIRCUIT = f"The original's Goat circuit was found on the bugged Goat. {LORA_NOTE}"
acc, faith = close(0.05), close(0.10)
HEADLINES: list[Headline] = [
    *_family("accuracy", "Task accuracy of {model}", "circuit_eval.ipynb", paper.ACCURACY, "±0.05", acc,
             lambda r, m: r.accuracy(m)["accuracy"], {paper.GOAT: "No hooks: unaffected by the original's LoRA bug."}),
    *_family("circuit_size", "Circuit size of {model} (total; VF/PT/PD/SR)", "results/circuits/*_circuit.json",
             {m: {"total": sum(v), "groups": list(v)} for m, v in paper.CIRCUIT_SIZES.items()}, "±25 % of the total",
             close_relative(0.25), _sizes,
             {"*": "Minimality's bugs are fixed (pairs removed by value, unrounded accuracies); data regenerated.",
              paper.GOAT: f"Minimality's bugs are fixed. {LORA_NOTE}"}),
    *_family("llama_circuit_accuracy", "Accuracy of our Llama circuit on {model}", "circuit_eval.ipynb",
             paper.LLAMA_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.LLAMA, "circuit_accuracy"),
             {paper.GOAT: LORA_NOTE}, lambda k: (paper.LLAMA, GROUPS)),
    *_family("llama_circuit_faithfulness", "Faithfulness of our Llama circuit on {model}", "circuit_eval.ipynb",
             paper.LLAMA_CIRCUIT_FAITHFULNESS, "±0.10", faith, _faithfulness_of(paper.LLAMA, "faithfulness"),
             {"*": UNROUNDED, paper.GOAT: f"{UNROUNDED} {LORA_NOTE}"}, lambda k: (paper.LLAMA, GROUPS)),
    *_family("published_circuit_accuracy", "Accuracy of the published Llama circuit on {model}", "circuit_eval.ipynb",
             paper.LLAMA_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.PUBLISHED_LLAMA, "circuit_accuracy"),
             {paper.GOAT: LORA_NOTE}),
    *_family("published_circuit_faithfulness", "Faithfulness of the published Llama circuit on {model}",
             "circuit_eval.ipynb",
             paper.LLAMA_CIRCUIT_FAITHFULNESS, "±0.10", faith,
             _faithfulness_of(paper.PUBLISHED_LLAMA, "faithfulness"), {"*": UNROUNDED}),
    *_family("random_circuit_accuracy", "Random circuits of the Llama circuit's sizes on {model}", "circuit_eval.ipynb",
             paper.RANDOM_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.LLAMA, "random_accuracy_mean"),
             {"*": "Ours draws heads without replacement (the original: with replacement)."},
             lambda k: (paper.LLAMA, GROUPS)),
    *_family("goat_circuit_accuracy", "Accuracy of the Goat circuit on {model}", "circuit_eval.ipynb @b4c3180",
             paper.GOAT_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.GOAT, "circuit_accuracy"),
             {"*": GOAT_CIRCUIT, paper.FLOAT: f"The paper's model was the pre-upload FLoat. {GOAT_CIRCUIT}"},
             lambda k: (paper.GOAT, GROUPS)),
    *_family("goat_circuit_faithfulness", "Faithfulness of the Goat circuit on {model}", "circuit_eval.ipynb @b4c3180",
             paper.GOAT_CIRCUIT_FAITHFULNESS, "±0.10", faith, _faithfulness_of(paper.GOAT, "faithfulness"),
             {"*": GOAT_CIRCUIT, paper.FLOAT: f"The paper's model was the pre-upload FLoat. {GOAT_CIRCUIT}"},
             lambda k: (paper.GOAT, GROUPS)),
    *_family("completeness", "Completeness of {model}'s circuit: mean |ΔF| over random K", "completeness.ipynb",
             paper.COMPLETENESS, "±0.05", close(0.05), lambda r, m: r.completeness(m)["random"]["diff"]["mean"],
             {paper.LLAMA: "Ours draws 20 random K for every model (the original: 10 for Llama).",
              paper.GOAT: LORA_NOTE}, lambda m: (m, GROUPS)),
    *_family("strongest_head", "Llama's strongest {key} head in path patching: head, score",
             "results/path_patching/llama_circuit/*.pt",
             {g: {"head": list(h), "score": s} for g, (h, s) in paper.STRONGEST_HEAD.items()},
             "same head, score ±0.05", same_head(0.05), _strongest, None, lambda g: (paper.LLAMA, (g,), False)),
    *_family("dcm", "DCM test accuracy of our Llama circuit's heads, {key}", "results/DCM/llama_circuit/*/*/0.01.txt",
             {f"{g}.{d}": acc_ for (g, d), (_, acc_) in paper.DCM_LLAMA.items()}, "±0.05 (test accuracy)",
             close_field(0.05, "comparable"), _dcm_llama,
             {f"{g}.positional": f"{FLOOR_NOTE} {COMPARABLE_NOTE} {PUBLISHED_DCM}" for g in GROUPS}
             | {"struct_reader.positional": f"{FLOOR_NOTE} {COMPARABLE_NOTE} {SR_NOTE} {PUBLISHED_DCM}",
                "*": PUBLISHED_DCM}, lambda k: (paper.LLAMA, (k.split(".")[0],))),
    *_family("activation_patching", "Activation patching of our Llama circuit's DCM heads, {key}",
             "activation_patching.py",
             {f"{g}.{d}.{m}": v / 100 for (g, d), per in paper.ACTIVATION_PATCHING.items() for m, v in per.items()},
             "±0.05 (5 points; the paper's % as a fraction)", close_field(0.05, "comparable"), _ap_llama,
             {f"{g}.{d}.{m}": _notes(d == "positional" and f"{FLOOR_NOTE} {COMPARABLE_NOTE}",
                                     m == paper.GOAT and LORA_NOTE)
              for (g, d), per in paper.ACTIVATION_PATCHING.items() for m in per},
             lambda k: (paper.LLAMA, (k.split(".")[0],))),
    *_family("cmap", "CMAP fine-tuned -> Llama-7B, output patching, {key}", "cmap.ipynb",
             {f"{m}.{g}": v for m, bars in paper.CMAP.items() for g, v in bars.items()}, "±0.05",
             close_field(0.05, "accuracy"), _cmap_llama,
             {f"{m}.{g}": _notes(CMAP_NOTE, m == paper.GOAT and LORA_NOTE)
              for m, bars in paper.CMAP.items() for g in bars},
             lambda k: (k.split(".")[0], GROUPS if k.endswith(".full") else (k.split(".")[1],))),
    *_family("knockout", "Attention knockout in Llama, last token -> correct object, first blocked layer s = {key}",
             "attn_knockout/results", paper.KNOCKOUT_LAST_TO_OBJECT, "±0.05", acc,
             lambda r, s: r.field(relative("knockout", model=paper.LLAMA), "conditions", KO_OBJECT, "accuracy", s),
             {"*": "s is 0-based (the paper's key s + 1): s = 0 blocks every layer, s = 31 the last layer only."}),
]  # fmt: skip


def headline_claims(r: Results, headlines: Iterable[Headline] = HEADLINES) -> list[Claim]:
    """The headline rows: measured and checked in the paper study, not applicable elsewhere."""
    out = []
    for h in headlines:
        claim = Claim(h.id, "headline", h.statement, h.source, h.paper, None, h.tolerance, NOT_APPLICABLE, h.note)
        if r.study.name != paper.STUDY:
            claim.note = "Paper study only: this study does not run the paper's models."
        else:
            try:
                why = unsupported(r, *h.needs) if h.needs else None
                if why:
                    claim.verdict, claim.note = NOT_APPLICABLE, f"{why} {h.note}".strip()
                else:
                    claim.ours = h.measure(r, h.key)
                    claim.verdict = PASS if claim.ours is not None and h.check(claim.ours, h.paper) else FAIL
            except Missing as missing:
                claim.verdict = NOT_COMPUTED
                claim.note = f"{missing}. {h.note}".strip()
        out.append(claim)
    return out
