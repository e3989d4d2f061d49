"""The claims report: the paper's numbers and claims beside ours, each with an honest verdict.

Two kinds of claim, kept apart in the report:

* **headline** — a number of the paper beside ours, within a tolerance. Only
  the paper profile runs the paper's models; on every other profile these rows are
  ``not applicable``.
* **qualitative** — a claim of the paper tested on this profile's models (any profile): fine-tuned
  models are more accurate; circuits are faithful, specific and complete; the base circuit
  transfers to and survives in the fine-tuned models; DCM finds position in the position transmitter
  and detector, the object value in the value fetcher, nothing in the structure reader, and (the
  paper's reading of its buggy zeros) no box-label value; CMAP of the value fetcher and position
  transmitter lifts the base; attention knockout along the paper's paths hurts more than to a
  random position.

Verdicts: ``pass``, ``fail``, ``not computed`` (an input does not exist yet; the note names the
file), ``not applicable``.

Tolerances of the headline numbers (absolute unless marked):

* accuracies (task, circuit, random circuit, DCM test, CMAP, knockout): ±0.05, about the half-width of
  a 95 % interval on 500 prompts (±0.04) plus the rounding of the paper's two decimals;
* faithfulness: ±0.10 (a ratio of two such accuracies);
* completeness, mean |ΔF| over random K: ±0.05;
* circuit sizes: ±25 % of the paper's total (the data are regenerated and minimality's bugs fixed);
* strongest path-patching head per stage: the same head, and its score ±0.05;
* activation patching: ±0.05, i.e. 5 percentage points (ours are fractions, the paper's percent;
  the report shows the paper's as fractions).

Thresholds of the qualitative claims: faithful means F ≥ 0.80 (the paper: 0.88–1.00); complete
means a mean |ΔF| over random K ≤ 0.15 (the paper: 0.06–0.10); the base circuit survives
fine-tuning when ≥ 50 % of its nodes are in the fine-tuned model's circuit, and more than chance
(the paper: 75 %); specific means more than 0.05 above the best random circuit of the same group
sizes (the paper: 0.66-0.81 against 0.00-0.01).

Every comparison of two accuracies on the same prompts is a **paired test** at level ``ALPHA``
(0.05), and passes only when significant in the claimed direction (:mod:`entity_tracking.stats`,
McNemar's exact test on the discordant prompts):

* a fine-tuned model is more accurate than its base (one-sided);
* DCM: a group carries a piece of information when its test accuracy beats its chance floor (the
  same test pairs, nothing patched) significantly *and* by ≥ 0.05; the structure reader is "near
  its floor" when it does not (the paper: PT 0.362, PD 0.412 and SR 0.140 against the original's
  floor of ~0.13);
* CMAP: patching the fine-tuned model's value fetcher or position transmitter into its base lifts
  the base's accuracy (one-sided); the full circuit lifts it *and* is not significantly below the
  fine-tuned model's accuracy (the paper's "brings the base to the fine-tuned accuracy"); the
  position detector and the structure reader do not lift it significantly;
* knockout along the paper's paths hurts more than its random control: per prompt, the mean
  accuracy over the first half of the start layers (s < L/2, rounded up), blocked minus control;
  an exact sign test that these differences lean below 0, and a mean difference below -0.05.

A claim that needs a group whose path-patching stage found no head beyond noise (or was not run
after such a stage), or that minimality left empty, is ``not applicable`` and its note names the
stage: faithfulness, specificity (random circuits), completeness and survival need every group of
the circuit; DCM, activation patching and CMAP need their group (the full circuit: every group).

To add a claim: write a function ``(Results) -> list[Claim]`` and append it to ``QUALITATIVE``, or
append a :class:`Headline` to ``HEADLINES``; list the files it reads as inputs of rule ``claims``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entity_tracking import paper
from entity_tracking.circuits import GROUPS, Circuit, group_status, load_circuit, top_heads
from entity_tracking.io import atomic_write, read_json, read_safetensors, write_json
from entity_tracking.stats import OutcomeError, paired_test, parse_outcomes, sign_test

PASS, FAIL, NOT_COMPUTED, NOT_APPLICABLE = "pass", "fail", "not computed", "not applicable"
VERDICTS = (PASS, FAIL, NOT_COMPUTED, NOT_APPLICABLE)
FAITHFUL, COMPLETE, SURVIVES, MARGIN, ALPHA = 0.80, 0.15, 0.50, 0.05, 0.05
NO_SIGNAL_STATUSES = ("no signal", "not run")
LORA_NOTE = (
    "The original dropped Goat's LoRA o_proj delta in every hooked forward pass (a bug); ours merges "
    "the adapter first, so Goat's hooked results may differ for that reason."
)


@dataclass
class Claim:
    """One row of the report."""

    id: str
    kind: str  # "headline" | "qualitative"
    statement: str
    source: str
    paper: Any = None
    ours: Any = None
    tolerance: str = ""
    verdict: str = NOT_COMPUTED
    note: str = ""


class Missing(Exception):
    """A file a claim needs does not exist (yet)."""


class Results:
    """Read access to one profile's results directory, raising :class:`Missing` for absent files."""

    def __init__(self, root: str | Path, config: dict[str, Any]) -> None:
        self.root = Path(root)
        self.config = config
        self.models: list[str] = list(config["models"])

    def path(self, rel: str) -> Path:
        path = self.root / rel
        if not path.is_file():
            raise Missing(f"needs {path.as_posix()}")
        return path

    def json(self, rel: str) -> Any:
        return read_json(self.path(rel))

    def field(self, rel: str, *keys: Any) -> Any:
        """A value inside a JSON file by its key path; :class:`Missing` names the file and the path."""
        value = self.json(rel)
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                where = "/".join(map(str, keys))
                raise Missing(f"needs {(self.root / rel).as_posix()} with {where}") from None
        return value

    def label(self, model: str) -> str:
        return self.config["models"].get(model, {}).get("label", model)

    def finetuned(self) -> list[tuple[str, str]]:
        """(fine-tuned model, its base model) pairs, in profile order."""
        specs = self.config["models"]
        return [(m, s["base_model"]) for m, s in specs.items() if s.get("role") == "finetuned" and s.get("base_model")]

    def accuracy(self, model: str) -> dict[str, Any]:
        return self.json(f"eval/{model}.json")

    def faithfulness(self, circuit: str, model: str) -> dict[str, Any]:
        return self.json(f"faithfulness/{circuit}/{model}.json")

    def completeness(self, model: str) -> dict[str, Any]:
        return self.json(f"completeness/{model}.json")

    def circuit(self, name: str) -> Circuit:
        return load_circuit(self.path(f"circuits/{name}/circuit.json"))

    def status(self, name: str) -> dict[str, dict[str, str]]:
        """Per group of a circuit, the status of its path-patching stage (``given`` for a published circuit)."""
        return group_status(self.path(f"circuits/{name}/circuit.json"))

    def outcomes(self, entry: dict[str, Any], where: str, key: str = "outcomes") -> np.ndarray:
        """The per-record outcomes ``entry[key]`` of an accuracy entry of file ``where``; :class:`Missing` when
        absent (results made before outcomes were recorded)."""
        if not isinstance(entry, dict) or key not in entry:
            where_ = (self.root / where).as_posix()
            raise Missing(f"needs per-record outcomes ({key}) in {where_}: rerun the job that made it")
        try:
            return parse_outcomes(entry[key], where)
        except OutcomeError as err:
            raise Missing(f"needs valid per-record outcomes: {err}") from None

    def path_patching(self, model: str) -> dict[str, Any]:
        return read_safetensors(self.path(f"circuits/{model}/path_patching.safetensors"))

    def overlap(self, a: str, b: str) -> dict[str, Any]:
        """The overlap row of circuits ``a`` and ``b`` over all groups (precision = |a ∩ b| / |a|)."""
        rows = self.json("circuit_overlap.json")
        return next(r for r in rows if r["circuit_a"] == a and r["circuit_b"] == b and r["group"] == "all")

    def base_of(self, model: str) -> str:
        """A model's base model, or the model itself when it is a base."""
        return self.config["models"].get(model, {}).get("base_model") or model

    def dcm_circuits(self) -> dict[str, str]:
        """The circuits DCM ran on, with the model each was found in (as in ``rules/dcm.smk``)."""
        external = self.config.get("circuit", {}).get("external") or {}
        return {m: m for m in self.models} | {c: e["found_in"] for c, e in external.items() if e.get("found_in")}

    def dcm(self, circuit: str, group: str, desideratum: str) -> dict[str, Any]:
        return self.json(f"dcm/{circuit}/{group}/{desideratum}.json")

    def cmap_pairs(self) -> list[tuple[str, str]]:
        """The CMAP pairs that patch a fine-tuned model into its base (``cmap.pairs`` or the default)."""
        pairs = self.config.get("cmap", {}).get("pairs")
        wanted = [tuple(p) for p in pairs] if pairs else self.finetuned()
        return [p for p in wanted if p in self.finetuned()]

    def knockout_models(self) -> list[str]:
        return list(self.config.get("knockout", {}).get("models") or self.models)

    def heads_per_model(self, model: str) -> int:
        arch = self.json(f"models/{model}.json")["architecture"]
        return arch["layers"] * arch["heads"]


def unsupported(r: Results, circuit: str, groups: Iterable[str] = GROUPS, heads: bool = True) -> str | None:
    """Why a claim that needs ``groups`` of ``circuit`` is not applicable, or None: a group whose stage had no
    signal (or was not run after one that had none), or (``heads``: the claim needs the group's heads) a group
    minimality left empty."""
    status = r.status(circuit)
    groups = tuple(groups)
    missing = [g for g in groups if status[g]["status"] in NO_SIGNAL_STATUSES]
    if missing:
        stop = next((g for g in GROUPS if status[g]["status"] == "no signal"), missing[0])
        after = [GROUP_NAMES[g] for g in missing if status[g]["status"] == "not run"]
        tail = f"; the {', '.join(after)} stage{'s' if len(after) > 1 else ''} not run" if after else ""
        return f"Not applicable: no signal in stage {GROUP_NAMES[stop]} of {r.label(circuit)}'s circuit{tail}."
    kept = r.circuit(circuit) if heads else {}
    empty = [GROUP_NAMES[g] for g in groups if heads and not kept[g]]
    if empty:
        return f"Not applicable: minimality left the {', '.join(empty)} of {r.label(circuit)}'s circuit empty."
    return None


def paired_note(test: dict[str, Any], a: str, b: str) -> str:
    """One sentence on a paired test of accuracy ``a`` against ``b``."""
    return (
        f"Paired on {test['records']} prompts: {test['a_only']} right only for {a}, {test['b_only']} only for {b}; "
        f"McNemar exact {test['alternative']} p = {test['p_value']:.2g}."
    )


# --- headline numbers (paper profile) -------------------------------------------------------------


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


def _selected(res: dict[str, Any]) -> str:
    return f"{len(res['selected'])}/{len(res['heads'])}"


def original_floor(r: Results, value: float, desideratum: str, model: str) -> float:
    """Our positional accuracy as the original would have measured it: its sampling let a share 1/B of the pairs
    (B boxes) query the base's own box, where the label is the base's own answer and the model is right about as
    often as its task accuracy a: ``(1 - 1/B) * ours + a / B``. Other desiderata are unchanged."""
    if desideratum != "positional":
        return value
    boxes = int(r.config.get("dataset", {}).get("num_boxes", 7))
    return (1 - 1 / boxes) * value + r.accuracy(model)["accuracy"] / boxes


def _dcm_llama(r: Results, key: str) -> dict[str, Any]:
    group, desideratum = key.split(".")
    res = r.dcm(paper.LLAMA, group, desideratum)
    test = res["test_accuracy"]
    return {"test_accuracy": test, "comparable": original_floor(r, test, desideratum, paper.LLAMA),
            "chance_floor": res["chance_floor"], "selected": _selected(res)}  # fmt: skip


def _ap_llama(r: Results, key: str) -> dict[str, Any]:
    group, desideratum, model = key.split(".")
    cell = r.field(f"activation_patching/{model}.json", "circuits", paper.LLAMA, group, desideratum)
    acc_ = cell["accuracy"]
    return {"accuracy": acc_["mean"], "comparable": original_floor(r, acc_["mean"], desideratum, model),
            "std": acc_["std"], "chance_floor": cell["chance_floor_mean"]}  # fmt: skip


def _cmap_llama(r: Results, key: str) -> dict[str, Any]:
    source, group = key.split(".")
    row = r.field(f"cmap/{source}__{paper.LLAMA}.json", "output", "full_circuit" if group == "full" else group)
    return {"accuracy": row["accuracy"], "heads": row["heads"]}


FLOOR_NOTE = (
    "The original's positional pairs let ~1/7 of them ask for the base's own answer, so a no-op scored 9-13 %; "
    "ours are resampled and the chance floor (nothing patched) is measured on the same pairs: the paper's number "
    "includes its higher floor."
)
COMPARABLE_NOTE = (
    "Checked on 'comparable' = (1 - 1/B) * ours + a / B (B boxes, a the model's task accuracy): our accuracy with "
    "the original's share 1/B of pairs that ask for the base's own answer, where the model is right at about its "
    "task accuracy."
)
SR_NOTE = (
    "The original validated the structure reader's masks at the training batch's positions and patched it at "
    "the base's position in activation patching; ours uses each prompt's own positions."
)
PUBLISHED_DCM = "Ours is DCM on our Llama circuit; dcm/published-llama/ holds it on the original's circuit."
BOX_LABEL_NOTE = (
    "The original's box-label label could never be matched (a tokenization bug), so its 0.0 everywhere measured "
    "nothing; ours tokenizes the label as a word and re-measures it."
)
CMAP_NOTE = "Head sets as in the paper: the fine-tuned circuit's DCM heads (VF object, PT/PD positional), whole SR."
KO_OBJECT = "last_to_correct_object"


def _notes(*notes: str | bool) -> str:
    """The notes that apply (``cond and text`` gives False when the condition does not hold)."""
    return " ".join(n for n in notes if isinstance(n, str) and n)


UNROUNDED = "Ours is the unrounded ratio; the paper's, a ratio of accuracies rounded to 0.01."
GOAT_CIRCUIT = f"The original's Goat circuit was found on the bugged Goat. {LORA_NOTE}"
acc, faith = close(0.05), close(0.10)
HEADLINES: list[Headline] = [
    *_family("accuracy", "Task accuracy of {model}", "§3", paper.ACCURACY, "±0.05", acc,
             lambda r, m: r.accuracy(m)["accuracy"], {paper.GOAT: "No hooks: unaffected by the original's LoRA bug."}),
    *_family("circuit_size", "Circuit size of {model} (total; VF/PT/PD/SR)", "§5.3",
             {m: {"total": sum(v), "groups": list(v)} for m, v in paper.CIRCUIT_SIZES.items()}, "±25 % of the total",
             close_relative(0.25), _sizes,
             {"*": "Minimality's bugs are fixed (pairs removed by value, unrounded accuracies); data regenerated.",
              paper.GOAT: f"Minimality's bugs are fixed. {LORA_NOTE}"}),
    *_family("llama_circuit_accuracy", "Accuracy of our Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.LLAMA, "circuit_accuracy"),
             {paper.GOAT: LORA_NOTE}, lambda k: (paper.LLAMA, GROUPS)),
    *_family("llama_circuit_faithfulness", "Faithfulness of our Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_FAITHFULNESS, "±0.10", faith, _faithfulness_of(paper.LLAMA, "faithfulness"),
             {"*": UNROUNDED, paper.GOAT: f"{UNROUNDED} {LORA_NOTE}"}, lambda k: (paper.LLAMA, GROUPS)),
    *_family("published_circuit_accuracy", "Accuracy of the published Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.PUBLISHED_LLAMA, "circuit_accuracy"),
             {paper.GOAT: LORA_NOTE}),
    *_family("published_circuit_faithfulness", "Faithfulness of the published Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_FAITHFULNESS, "±0.10", faith,
             _faithfulness_of(paper.PUBLISHED_LLAMA, "faithfulness"), {"*": UNROUNDED}),
    *_family("random_circuit_accuracy", "Random circuits of the Llama circuit's sizes on {model}", "§5.2",
             paper.RANDOM_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.LLAMA, "random_accuracy_mean"),
             {"*": "Ours draws heads without replacement (the original: with replacement)."},
             lambda k: (paper.LLAMA, GROUPS)),
    *_family("goat_circuit_accuracy", "Accuracy of the Goat circuit on {model}", "§5.2 (@b4c3180)",
             paper.GOAT_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.GOAT, "circuit_accuracy"),
             {"*": GOAT_CIRCUIT, paper.FLOAT: f"The paper's model was the pre-upload FLoat. {GOAT_CIRCUIT}"},
             lambda k: (paper.GOAT, GROUPS)),
    *_family("goat_circuit_faithfulness", "Faithfulness of the Goat circuit on {model}", "§5.2 (@b4c3180)",
             paper.GOAT_CIRCUIT_FAITHFULNESS, "±0.10", faith, _faithfulness_of(paper.GOAT, "faithfulness"),
             {"*": GOAT_CIRCUIT, paper.FLOAT: f"The paper's model was the pre-upload FLoat. {GOAT_CIRCUIT}"},
             lambda k: (paper.GOAT, GROUPS)),
    *_family("completeness", "Completeness of {model}'s circuit: mean |ΔF| over random K", "§5.4",
             paper.COMPLETENESS, "±0.05", close(0.05), lambda r, m: r.completeness(m)["random"]["diff"]["mean"],
             {paper.LLAMA: "Ours draws 20 random K for every model (the original: 10 for Llama).",
              paper.GOAT: LORA_NOTE}, lambda m: (m, GROUPS)),
    *_family("strongest_head", "Llama's strongest {key} head in path patching: head, score", "§4.3",
             {g: {"head": list(h), "score": s} for g, (h, s) in paper.STRONGEST_HEAD.items()},
             "same head, score ±0.05", same_head(0.05), _strongest, None, lambda g: (paper.LLAMA, (g,), False)),
    *_family("dcm", "DCM test accuracy of our Llama circuit's heads, {key}", "§6",
             {f"{g}.{d}": acc_ for (g, d), (_, acc_) in paper.DCM_LLAMA.items()}, "±0.05 (test accuracy)",
             close_field(0.05, "comparable"), _dcm_llama,
             {f"{g}.positional": f"{FLOOR_NOTE} {COMPARABLE_NOTE} {PUBLISHED_DCM}" for g in GROUPS}
             | {"struct_reader.positional": f"{FLOOR_NOTE} {COMPARABLE_NOTE} {SR_NOTE} {PUBLISHED_DCM}",
                "*": PUBLISHED_DCM}, lambda k: (paper.LLAMA, (k.split(".")[0],))),
    *_family("activation_patching", "Activation patching of our Llama circuit's DCM heads, {key}", "§6.1",
             {f"{g}.{d}.{m}": v / 100 for (g, d), per in paper.ACTIVATION_PATCHING.items() for m, v in per.items()},
             "±0.05 (5 points; the paper's % as a fraction)", close_field(0.05, "comparable"), _ap_llama,
             {f"{g}.{d}.{m}": _notes(d == "positional" and f"{FLOOR_NOTE} {COMPARABLE_NOTE}",
                                     m == paper.GOAT and LORA_NOTE)
              for (g, d), per in paper.ACTIVATION_PATCHING.items() for m in per},
             lambda k: (paper.LLAMA, (k.split(".")[0],))),
    *_family("cmap", "CMAP fine-tuned -> Llama-7B, output patching, {key}", "§7",
             {f"{m}.{g}": v for m, bars in paper.CMAP.items() for g, v in bars.items()}, "±0.05",
             close_field(0.05, "accuracy"), _cmap_llama,
             {f"{m}.{g}": _notes(CMAP_NOTE, m == paper.GOAT and LORA_NOTE)
              for m, bars in paper.CMAP.items() for g in bars},
             lambda k: (k.split(".")[0], GROUPS if k.endswith(".full") else (k.split(".")[1],))),
    *_family("knockout", "Attention knockout in Llama, last token -> correct object, first blocked layer s = {key}",
             "§8", paper.KNOCKOUT_LAST_TO_OBJECT, "±0.05", acc,
             lambda r, s: r.field(f"knockout/{paper.LLAMA}.json", "conditions", KO_OBJECT, "accuracy", s),
             {"*": "s is 0-based (the paper's key s + 1): s = 0 blocks every layer, s = 31 the last layer only."}),
]  # fmt: skip


def headline_claims(r: Results, headlines: Iterable[Headline] = HEADLINES) -> list[Claim]:
    """The headline rows: measured and checked on the paper profile, not applicable elsewhere."""
    out = []
    for h in headlines:
        claim = Claim(h.id, "headline", h.statement, h.source, h.paper, None, h.tolerance, NOT_APPLICABLE, h.note)
        if r.config["profile"] != paper.PROFILE:
            claim.note = "Paper profile only: this profile does not run the paper's models."
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


# --- qualitative claims (every profile) ---------------------------------------------------------


def _check(claim: Claim, compute: Callable[[], tuple[Any, bool | None, str]]) -> Claim:
    """Fill ``ours``, the verdict and the note from ``compute() -> (ours, holds, note)``; holds None: n/a."""
    try:
        claim.ours, holds, claim.note = compute()
        claim.verdict = NOT_APPLICABLE if holds is None else PASS if holds else FAIL
    except Missing as missing:
        claim.verdict, claim.note = NOT_COMPUTED, str(missing)
    return claim


def _no_finetuned(claim_id: str, statement: str, source: str) -> list[Claim]:
    note = "This profile has no fine-tuned model with a base_model."
    return [Claim(claim_id, "qualitative", statement, source, verdict=NOT_APPLICABLE, note=note)]


def finetuned_more_accurate(r: Results) -> list[Claim]:
    """Fine-tuned models track entities better than their base model (paper §3): a paired test on the same
    evaluation prompts, significant in that direction. The two-sided p of the change, whatever its sign, is
    reported beside it (a loss is a finding too)."""
    source, ref = "§3", "Vicuna 0.67, Goat 0.82, FLoat 0.82 against Llama 0.66"
    if not r.finetuned():
        return _no_finetuned("Q.more_accurate", "Fine-tuned models are more accurate than their base", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool, str]:
            a, b = r.accuracy(ft), r.accuracy(base)
            tuned, own = r.outcomes(a, f"eval/{ft}.json"), r.outcomes(b, f"eval/{base}.json")
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
    """The base model's circuit explains the fine-tuned models too (paper §5.2)."""
    source, ref = "§5.2", "Llama circuit: Vicuna 0.97, Goat 0.89, FLoat 0.88"
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
    """Each model's own circuit explains the model (paper §5.2)."""
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
                      "§5.2", "Llama 1.00, Goat 0.99", tolerance=f"≥ {FAITHFUL}")  # fmt: skip
        out.append(_check(claim, compute))
    return out


def circuits_beat_random(r: Results) -> list[Claim]:
    """A circuit does better than random circuits of the same group sizes (paper §5.2)."""
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
        claim = Claim(f"Q.beats_random.{m}", "qualitative", statement, "§5.2", "circuits 0.66-0.81, random 0.00-0.01",
                      tolerance=f"> best random + {MARGIN}")  # fmt: skip
        out.append(_check(claim, compute))
    return out


def circuits_complete(r: Results) -> list[Claim]:
    """Removing any part of the circuit hurts circuit and model alike (paper §5.4)."""
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
        claim = Claim(f"Q.complete.{m}", "qualitative", statement, "§5.4", ref, tolerance=f"mean |ΔF| ≤ {COMPLETE}")
        out.append(_check(claim, compute))
    return out


def base_circuit_survives(r: Results) -> list[Claim]:
    """The fine-tuned model's circuit contains most of the base circuit (paper §5.3, overlap); the note puts the
    two models' candidate overlap beside the overlap a resample of the base's own prompts gives."""
    source, ref = "§5.3, overlap", "75 % of Llama's circuit is in FLoat's, 75 % in Goat's"
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


GROUP_NAMES = {
    "value_fetcher": "value fetcher",
    "pos_transmitter": "position transmitter",
    "pos_detector": "position detector",
    "struct_reader": "structure reader",
}
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
    where = f"dcm/{circuit}/{group}/{desideratum}.json"
    test, floor = res["test_accuracy"], res["chance_floor"]
    paired = paired_test(r.outcomes(res, where, "test_outcomes"), r.outcomes(res, where, "floor_outcomes"))
    ours = {"test_accuracy": test, "chance_floor": floor, "above_floor": test - floor, "p": paired["p_value"],
            "selected": _selected(res)}  # fmt: skip
    return ours, test - floor >= MARGIN and paired["p_value"] < ALPHA


def _patched_into_base(r: Results, circuit: str, group: str, desideratum: str) -> tuple[float | None, str]:
    """Activation patching of the group's DCM heads into the base model: its mean accuracy and a note."""
    base = r.base_of(r.dcm_circuits()[circuit])
    try:
        cell = r.field(f"activation_patching/{base}.json", "circuits", circuit, group, desideratum)
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
        claim = Claim(f"Q.{name}.{circuit}", "qualitative", text, "§6", DCM_PAPER[(group, desideratum)],
                      tolerance=criterion)  # fmt: skip
        out.append(_check(claim, compute))
    return out


def groups_carry_their_information(r: Results) -> list[Claim]:
    """DCM finds the information each group is named for (paper §6): position in the position transmitter
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
        claim = Claim(f"Q.dcm_box_label.{circuit}", "qualitative", statement, "§6",
                      "0.0 in every group (a label bug)", tolerance=f"every group: not ({CARRIES})")  # fmt: skip
        out.append(_check(claim, compute))
    return out


CMAP_GROUPS = ("value_fetcher", "pos_transmitter")
CMAP_SOURCE, CMAP_REF = "§7", "Goat -> Llama: VF 0.82, PT 0.78; FLoat -> Llama: VF 0.82, PT 0.74; Llama 0.66, FT 0.82"


def _cmap_rows(r: Results, ft: str, base: str, group: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A CMAP pair's output-patching row of ``group`` (or ``full_circuit``) with its paired tests against the base
    (``lift``: patched more accurate) and against the fine-tuned model (``below``: patched less accurate), the
    claim's ``ours``, and why the claim is not applicable (None when it is)."""
    rel = f"cmap/{ft}__{base}.json"
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
    base's accuracy (paper §7: Goat -> Llama VF 0.82, PT 0.78 against 0.66): a paired test, one-sided."""
    if not r.cmap_pairs():
        note = "No CMAP pair patches a fine-tuned model into its base_model on this profile."
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
    """Patching the whole fine-tuned circuit brings the base to the fine-tuned accuracy (paper §7: 0.82 = FT):
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
    """Patching the fine-tuned position detector or structure reader does not lift the base (paper §7:
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
    """Blocking attention along the paper's information paths (paper §8) in the early layers hurts more than
    blocking it to a random position: per prompt, the mean accuracy over start layers s < L/2 (rounded up),
    blocked minus random; a sign test that these lean below 0, and a mean below -MARGIN."""
    out = []
    for model in r.knockout_models():
        for blocked, control, ref in KNOCKOUT_CLAIMS:

            def compute(model: str = model, blocked: str = blocked, control: str = control) -> tuple[Any, bool, str]:
                rel = f"knockout/{model}.json"
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
            claim = Claim(f"Q.knockout.{blocked}.{model}", "qualitative", statement, "§8", ref,
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


def evaluate_claims(r: Results) -> list[Claim]:
    """Every qualitative claim, then every headline number."""
    return [c for fn in QUALITATIVE for c in fn(r)] + headline_claims(r)


# --- writers ----------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def summary(claims: Iterable[Claim]) -> dict[str, dict[str, int]]:
    """Counts of verdicts per kind."""
    out: dict[str, dict[str, int]] = {}
    for c in claims:
        out.setdefault(c.kind, dict.fromkeys(VERDICTS, 0))[c.verdict] += 1
    return out


INTRO = (
    "The paper's claims and numbers beside ours, each with a verdict: pass, fail, not computed (an input "
    "does not exist yet; the note names it) or not applicable. Headline numbers are checked on the paper "
    "profile only; qualitative claims on every profile's models. Criteria and tolerances: "
    "`entity_tracking/claims.py` and docs/claims.md."
)
SECTIONS = (
    ("qualitative", "Qualitative claims of the paper, tested on this profile's models"),
    ("headline", "Headline numbers of the paper (reference spec §10), ours beside them"),
)
COLUMNS = ("id", "claim", "paper", "ours", "criterion", "verdict", "note")


def _cells(c: Claim) -> list[str]:
    return [c.id, f"{c.statement} ({c.source})", _fmt(c.paper), _fmt(c.ours), c.tolerance, c.verdict, c.note]


def write_claims(claims: list[Claim], profile: str, out_md: str | Path, out_json: str | Path) -> None:
    """The report as markdown (a table per kind) and as JSON (every field of every claim)."""
    counts = summary(claims)
    write_json(out_json, {"profile": profile, "summary": counts, "claims": [asdict(c) for c in claims]})
    lines = [f"# Claims report: profile `{profile}`", "", INTRO, ""]
    for kind, title in SECTIONS:
        tally = ", ".join(f"{n} {v}" for v, n in counts.get(kind, {}).items() if n)
        lines += [f"## {title}", "", f"Verdicts: {tally or 'none'}.", ""]
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for c in claims:
            if c.kind == kind:
                cells = [s.replace("|", "\\|").replace("\n", " ") for s in _cells(c)]
                cells[5] = f"**{cells[5]}**"
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    with atomic_write(out_md) as fh:
        fh.write("\n".join(lines))


VERDICT_COLORS = {PASS: "#d9f2d9", FAIL: "#f8d7d7", NOT_COMPUTED: "#eeeeee", NOT_APPLICABLE: "#ffffff"}


def write_claims_html(claims: list[Claim], profile: str, out_html: str | Path) -> None:
    """A self-contained HTML page of the same tables, for the Snakemake report."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Claims report</title><style>",
        "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;width:100%}",
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}",
        "</style></head><body>",
        f"<h1>Claims report: profile <code>{esc(profile)}</code></h1><p>{esc(INTRO)}</p>",
    ]
    counts = summary(claims)
    for kind, title in SECTIONS:
        tally = ", ".join(f"{n} {v}" for v, n in counts.get(kind, {}).items() if n)
        parts += [f"<h2>{esc(title)}</h2><p>Verdicts: {esc(tally or 'none')}.</p><table><tr>"]
        parts += [f"<th>{esc(c)}</th>" for c in COLUMNS] + ["</tr>"]
        for c in claims:
            if c.kind == kind:
                cells = [f"<td>{esc(s)}</td>" for s in _cells(c)]
                cells[5] = f"<td style='background:{VERDICT_COLORS[c.verdict]}'><b>{esc(c.verdict)}</b></td>"
                parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    with atomic_write(out_html) as fh:
        fh.write("\n".join(parts))


def run_claims(
    root: str | Path, config: dict[str, Any], out_md: str | Path, out_json: str | Path, out_html: str | Path
) -> list[Claim]:
    """Rule claims: evaluate every claim on the results under ``root`` and write the three reports."""
    claims = evaluate_claims(Results(root, config))
    write_claims(claims, config["profile"], out_md, out_json)
    write_claims_html(claims, config["profile"], out_html)
    return claims
