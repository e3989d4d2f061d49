"""The claims report: the paper's numbers and claims beside ours, each with an honest verdict.

Two kinds of claim, kept apart in the report:

* **headline** — a number of the paper (reference spec §10) beside ours, within a tolerance. Only
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
sizes (the paper: 0.66-0.81 against 0.00-0.01). DCM: a group carries a piece of information when
its test accuracy is ≥ its chance floor (the same test pairs, nothing patched) + 0.05, about three
standard errors of a difference of accuracies on 504 pairs; the structure reader is "near its floor"
below that (the paper: PT 0.362, PD 0.412 and SR 0.140 against the original's floor of ~0.13). A
group with no heads in the circuit is ``not applicable``. CMAP lifts the base when the patched
accuracy is above the base's 95 % interval (the paper's lifts: 0.08-0.16 on 500 prompts); the note
says how much of the gap to the fine-tuned accuracy it closes. Knockout hurts more than its random
control when the mean accuracy over the first half of the start layers (s < L/2, rounded up) is
more than 0.05 below the control's.

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

from entity_tracking import paper
from entity_tracking.circuits import GROUPS, Circuit, load_circuit, top_heads
from entity_tracking.io import atomic_write, read_json, read_safetensors, write_json

PASS, FAIL, NOT_COMPUTED, NOT_APPLICABLE = "pass", "fail", "not computed", "not applicable"
VERDICTS = (PASS, FAIL, NOT_COMPUTED, NOT_APPLICABLE)
FAITHFUL, COMPLETE, SURVIVES, MARGIN = 0.80, 0.15, 0.50, 0.05
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


def _family(
    name: str,
    statement: str,
    source: str,
    refs: dict[Any, Any],
    tolerance: str,
    check: Callable[[Any, Any], bool],
    measure: Callable[[Results, Any], Any],
    notes: dict[Any, str] | None = None,
) -> list[Headline]:
    """One row per key of ``refs``; ``statement`` may name ``{model}`` (the key's paper name) or ``{key}``."""
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


def _dcm_llama(r: Results, key: str) -> dict[str, Any]:
    group, desideratum = key.split(".")
    res = r.dcm(paper.LLAMA, group, desideratum)
    return {"test_accuracy": res["test_accuracy"], "chance_floor": res["chance_floor"], "selected": _selected(res)}


def _ap_llama(r: Results, key: str) -> dict[str, Any]:
    group, desideratum, model = key.split(".")
    cell = r.field(f"activation_patching/{model}.json", "circuits", paper.LLAMA, group, desideratum)
    acc_ = cell["accuracy"]
    return {"accuracy": acc_["mean"], "std": acc_["std"], "chance_floor": cell["chance_floor_mean"]}


def _cmap_llama(r: Results, key: str) -> dict[str, Any]:
    source, group = key.split(".")
    row = r.field(f"cmap/{source}__{paper.LLAMA}.json", "output", "full_circuit" if group == "full" else group)
    return {"accuracy": row["accuracy"], "heads": row["heads"]}


FLOOR_NOTE = (
    "The original's positional pairs let ~1/7 of them ask for the base's own answer, so a no-op scored 9-13 %; "
    "ours are resampled and the chance floor (nothing patched) is measured on the same pairs: the paper's number "
    "includes its higher floor."
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
             {paper.GOAT: LORA_NOTE}),
    *_family("llama_circuit_faithfulness", "Faithfulness of our Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_FAITHFULNESS, "±0.10", faith, _faithfulness_of(paper.LLAMA, "faithfulness"),
             {"*": UNROUNDED, paper.GOAT: f"{UNROUNDED} {LORA_NOTE}"}),
    *_family("published_circuit_accuracy", "Accuracy of the published Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.PUBLISHED_LLAMA, "circuit_accuracy"),
             {paper.GOAT: LORA_NOTE}),
    *_family("published_circuit_faithfulness", "Faithfulness of the published Llama circuit on {model}", "§5.2",
             paper.LLAMA_CIRCUIT_FAITHFULNESS, "±0.10", faith,
             _faithfulness_of(paper.PUBLISHED_LLAMA, "faithfulness"), {"*": UNROUNDED}),
    *_family("random_circuit_accuracy", "Random circuits of the Llama circuit's sizes on {model}", "§5.2",
             paper.RANDOM_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.LLAMA, "random_accuracy_mean"),
             {"*": "Ours draws heads without replacement (the original: with replacement)."}),
    *_family("goat_circuit_accuracy", "Accuracy of the Goat circuit on {model}", "§5.2 (@b4c3180)",
             paper.GOAT_CIRCUIT_ACCURACY, "±0.05", acc, _faithfulness_of(paper.GOAT, "circuit_accuracy"),
             {"*": GOAT_CIRCUIT, paper.FLOAT: f"The paper's model was the pre-upload FLoat. {GOAT_CIRCUIT}"}),
    *_family("goat_circuit_faithfulness", "Faithfulness of the Goat circuit on {model}", "§5.2 (@b4c3180)",
             paper.GOAT_CIRCUIT_FAITHFULNESS, "±0.10", faith, _faithfulness_of(paper.GOAT, "faithfulness"),
             {"*": GOAT_CIRCUIT, paper.FLOAT: f"The paper's model was the pre-upload FLoat. {GOAT_CIRCUIT}"}),
    *_family("completeness", "Completeness of {model}'s circuit: mean |ΔF| over random K", "§5.4",
             paper.COMPLETENESS, "±0.05", close(0.05), lambda r, m: r.completeness(m)["random"]["diff"]["mean"],
             {paper.LLAMA: "Ours draws 20 random K for every model (the original: 10 for Llama).",
              paper.GOAT: LORA_NOTE}),
    *_family("strongest_head", "Llama's strongest {key} head in path patching: head, score", "§4.3",
             {g: {"head": list(h), "score": s} for g, (h, s) in paper.STRONGEST_HEAD.items()},
             "same head, score ±0.05", same_head(0.05), _strongest),
    *_family("dcm", "DCM test accuracy of our Llama circuit's heads, {key}", "§6",
             {f"{g}.{d}": acc_ for (g, d), (_, acc_) in paper.DCM_LLAMA.items()}, "±0.05 (test accuracy)",
             close_field(0.05, "test_accuracy"), _dcm_llama,
             {f"{g}.positional": f"{FLOOR_NOTE} {PUBLISHED_DCM}" for g in GROUPS}
             | {"struct_reader.positional": f"{FLOOR_NOTE} {SR_NOTE} {PUBLISHED_DCM}", "*": PUBLISHED_DCM}),
    *_family("activation_patching", "Activation patching of our Llama circuit's DCM heads, {key}", "§6.1",
             {f"{g}.{d}.{m}": v / 100 for (g, d), per in paper.ACTIVATION_PATCHING.items() for m, v in per.items()},
             "±0.05 (5 points; the paper's % as a fraction)", close_field(0.05, "accuracy"), _ap_llama,
             {f"{g}.{d}.{m}": _notes(d == "positional" and FLOOR_NOTE, m == paper.GOAT and LORA_NOTE)
              for (g, d), per in paper.ACTIVATION_PATCHING.items() for m in per}),
    *_family("cmap", "CMAP fine-tuned -> Llama-7B, output patching, {key}", "§7",
             {f"{m}.{g}": v for m, bars in paper.CMAP.items() for g, v in bars.items()}, "±0.05",
             close_field(0.05, "accuracy"), _cmap_llama,
             {f"{m}.{g}": _notes(CMAP_NOTE, m == paper.GOAT and LORA_NOTE)
              for m, bars in paper.CMAP.items() for g in bars}),
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
    """Fine-tuned models track entities better than their base model (paper §3)."""
    source, ref = "§3", "Vicuna 0.67, Goat 0.82, FLoat 0.82 against Llama 0.66"
    if not r.finetuned():
        return _no_finetuned("Q.more_accurate", "Fine-tuned models are more accurate than their base", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool, str]:
            a, b = r.accuracy(ft), r.accuracy(base)
            ours = {"finetuned": a["accuracy"], "base": b["accuracy"], "difference": a["accuracy"] - b["accuracy"]}
            overlap = a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]
            note = (
                f"95 % intervals [{a['ci_low']:.3f}, {a['ci_high']:.3f}] and [{b['ci_low']:.3f}, {b['ci_high']:.3f}] "
            )
            note += "overlap: the difference is within noise." if overlap else "do not overlap."
            return ours, ours["difference"] > 0, note

        statement = f"{r.label(ft)} is more accurate than its base {r.label(base)}"
        out.append(
            _check(
                Claim(f"Q.more_accurate.{ft}", "qualitative", statement, source, ref, tolerance="difference > 0"),
                compute,
            )
        )
    return out


def base_circuit_faithful_on_finetuned(r: Results) -> list[Claim]:
    """The base model's circuit explains the fine-tuned models too (paper §5.2)."""
    source, ref = "§5.2", "Llama circuit: Vicuna 0.97, Goat 0.89, FLoat 0.88"
    if not r.finetuned():
        return _no_finetuned("Q.base_circuit_faithful", "The base circuit is faithful on fine-tuned models", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool, str]:
            f = r.faithfulness(base, ft)
            ours = {k: f[k] for k in ("faithfulness", "circuit_accuracy", "model_accuracy", "random_accuracy_mean")}
            return ours, f["faithfulness"] is not None and f["faithfulness"] >= FAITHFUL, ""

        statement = f"{r.label(base)}'s circuit is faithful on {r.label(ft)}"
        claim = Claim(f"Q.base_circuit_faithful.{ft}", "qualitative", statement, source, ref, tolerance=f"≥ {FAITHFUL}")
        out.append(_check(claim, compute))
    return out


def own_circuit_faithful(r: Results) -> list[Claim]:
    """Each model's own circuit explains the model (paper §5.2)."""
    out = []
    for m in r.models:

        def compute(m: str = m) -> tuple[Any, bool, str]:
            f = r.faithfulness(m, m)
            ours = {k: f[k] for k in ("faithfulness", "circuit_accuracy", "model_accuracy")}
            sizes = "/".join(str(f["sizes"][g]) for g in GROUPS)
            return ours, f["faithfulness"] is not None and f["faithfulness"] >= FAITHFUL, f"circuit sizes {sizes}"

        claim = Claim(
            f"Q.own_circuit_faithful.{m}",
            "qualitative",
            f"{r.label(m)}'s own circuit is faithful on it",
            "§5.2",
            "Llama 1.00, Goat 0.99",
            tolerance=f"≥ {FAITHFUL}",
        )
        out.append(_check(claim, compute))
    return out


def circuits_beat_random(r: Results) -> list[Claim]:
    """A circuit does better than random circuits of the same group sizes (paper §5.2)."""
    out = []
    for m in r.models:

        def compute(m: str = m) -> tuple[Any, bool, str]:
            f = r.faithfulness(m, m)
            best = max(f["random_accuracies"])
            ours = {
                "circuit_accuracy": f["circuit_accuracy"],
                "random_best": best,
                "random_mean": f["random_accuracy_mean"],
            }
            return ours, f["circuit_accuracy"] > best + MARGIN, f"{len(f['random_accuracies'])} random circuits"

        statement = f"{r.label(m)}'s own circuit beats every random circuit of its group sizes"
        claim = Claim(
            f"Q.beats_random.{m}",
            "qualitative",
            statement,
            "§5.2",
            "circuits 0.66-0.81, random 0.00-0.01",
            tolerance=f"> best random + {MARGIN}",
        )
        out.append(_check(claim, compute))
    return out


def circuits_complete(r: Results) -> list[Claim]:
    """Removing any part of the circuit hurts circuit and model alike (paper §5.4)."""
    out = []
    for m in r.models:

        def compute(m: str = m) -> tuple[Any, bool, str]:
            c = r.completeness(m)
            diff = c["random"]["diff"]
            groups = ", ".join(f"{g} {c['groups'][g]['diff']:.2f}" for g in GROUPS)
            ours = {"mean_abs_diff": diff["mean"], "std": diff["std"], "draws": len(c["random_draws"])}
            return ours, diff["mean"] <= COMPLETE, f"|ΔF| with K = a whole group: {groups}"

        statement = f"{r.label(m)}'s circuit is complete: F(C \\ K) tracks F(M \\ K) for random K"
        claim = Claim(
            f"Q.complete.{m}",
            "qualitative",
            statement,
            "§5.4",
            "mean |ΔF|: Llama 0.10, Goat 0.06, FLoat 0.09",
            tolerance=f"mean |ΔF| ≤ {COMPLETE}",
        )
        out.append(_check(claim, compute))
    return out


def base_circuit_survives(r: Results) -> list[Claim]:
    """The fine-tuned model's circuit contains most of the base circuit (paper §5.3, overlap)."""
    source, ref = "§5.3, overlap", "75 % of Llama's circuit is in FLoat's, 75 % in Goat's"
    if not r.finetuned():
        return _no_finetuned("Q.base_circuit_survives", "Fine-tuned circuits contain the base circuit", source)
    out = []
    for ft, base in r.finetuned():

        def compute(ft: str = ft, base: str = base) -> tuple[Any, bool, str]:
            row = r.overlap(base, ft)
            b, f, n = r.circuit(base), r.circuit(ft), r.heads_per_model(ft)
            chance = sum(len(b[g]) * len(f[g]) for g in GROUPS) / n / max(row["size_a"], 1)
            share = row["precision"]
            ours = {"share": share, "intersection": row["intersection"], "base_size": row["size_a"], "chance": chance}
            holds = share is not None and share >= SURVIVES and share > chance
            note = (
                "The base circuit is empty." if share is None else f"{r.label(ft)}'s circuit has {row['size_b']} nodes."
            )
            return ours, holds, note

        statement = f"{r.label(ft)}'s circuit contains most of {r.label(base)}'s circuit (same groups)"
        claim = Claim(
            f"Q.base_circuit_survives.{ft}",
            "qualitative",
            statement,
            source,
            ref,
            tolerance=f"share ≥ {SURVIVES} and > chance",
        )
        out.append(_check(claim, compute))
    return out


GROUP_NAMES = {
    "value_fetcher": "value fetcher",
    "pos_transmitter": "position transmitter",
    "pos_detector": "position detector",
    "struct_reader": "structure reader",
}
SHORT = {"value_fetcher": "VF", "pos_transmitter": "PT", "pos_detector": "PD", "struct_reader": "SR"}
DCM_PAPER = {  # the paper's Llama circuit (spec §6): test accuracy, heads selected / group size
    ("pos_transmitter", "positional"): "Llama circuit 0.362 (5/7 heads; the original's floor ~0.13)",
    ("pos_detector", "positional"): "Llama circuit 0.412 (14/20; the original's floor ~0.13)",
    ("value_fetcher", "object_value"): "Llama circuit 0.468 (40/40; floor ~0.01)",
    ("struct_reader", "positional"): "Llama circuit 0.140 (3/5), at the original's floor ~0.13",
}


def _dcm_row(r: Results, circuit: str, group: str, desideratum: str) -> tuple[dict[str, Any], bool]:
    """DCM's test accuracy, chance floor and selected heads of one group (a claim's ``ours``), and whether
    the group is empty."""
    res = r.dcm(circuit, group, desideratum)
    test, floor = res["test_accuracy"], res["chance_floor"]
    ours = {"test_accuracy": test, "chance_floor": floor, "above_floor": test - floor, "selected": _selected(res)}
    return ours, not res["heads"]


def _patched_into_base(r: Results, circuit: str, group: str, desideratum: str) -> tuple[float | None, str]:
    """Activation patching of the group's DCM heads into the base model: its mean accuracy and a note."""
    base = r.base_of(r.dcm_circuits()[circuit])
    try:
        cell = r.field(f"activation_patching/{base}.json", "circuits", circuit, group, desideratum)
    except Missing as missing:
        return None, f"Activation patching into {r.label(base)}: not computed ({missing})."
    mean, floor = cell["accuracy"]["mean"], cell["chance_floor_mean"]
    return mean, f"Activation patching into {r.label(base)}: {mean:.3f} (chance floor {floor:.3f})."


def _dcm_claims(
    r: Results, name: str, group: str, desideratum: str, statement: str, near_floor: bool, note: str = ""
) -> list[Claim]:
    """One claim per DCM circuit: the group's test accuracy is above (or, ``near_floor``, within) floor + MARGIN."""
    out = []
    for circuit in r.dcm_circuits():

        def compute(circuit: str = circuit) -> tuple[Any, bool | None, str]:
            ours, empty = _dcm_row(r, circuit, group, desideratum)
            if empty:
                return ours, None, f"The circuit's {GROUP_NAMES[group]} is empty: nothing to test."
            above = ours["above_floor"] >= MARGIN
            ours["patched_into_base"], patched = _patched_into_base(r, circuit, group, desideratum)
            return ours, (not above) if near_floor else above, _notes(note, patched)

        criterion = f"test < floor + {MARGIN}" if near_floor else f"test ≥ floor + {MARGIN}"
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
    re-measured here, per circuit: does any group carry it above its floor?"""
    out = []
    for circuit in r.dcm_circuits():

        def compute(circuit: str = circuit) -> tuple[Any, bool | None, str]:
            rows = {g: _dcm_row(r, circuit, g, "box_label_value") for g in GROUPS}
            tested = {g: row for g, (row, empty) in rows.items() if not empty}
            ours = {SHORT[g]: row["above_floor"] for g, row in tested.items()}
            if not tested:
                return ours, None, "Every group of the circuit is empty: nothing to test."
            carrying = [SHORT[g] for g, row in tested.items() if row["above_floor"] >= MARGIN]
            detail = "; ".join(
                f"{SHORT[g]} {row['test_accuracy']:.3f} (floor {row['chance_floor']:.3f}, {row['selected']} heads)"
                for g, row in tested.items()
            )
            found = f"Above floor + {MARGIN}: {', '.join(carrying)}." if carrying else "No group above the margin."
            return ours, not carrying, _notes(BOX_LABEL_NOTE, f"Test accuracy: {detail}.", found)

        statement = f"No group of {r.label(circuit)}'s circuit carries box-label value (DCM box_label_value)"
        criterion = f"every group: test < floor + {MARGIN}"
        claim = Claim(f"Q.dcm_box_label.{circuit}", "qualitative", statement, "§6",
                      "0.0 in every group (a label bug)", tolerance=criterion)  # fmt: skip
        out.append(_check(claim, compute))
    return out


CMAP_GROUPS = ("value_fetcher", "pos_transmitter")


def cmap_lifts_base(r: Results) -> list[Claim]:
    """Patching the fine-tuned model's value fetcher or position transmitter outputs into its base lifts the
    base's accuracy beyond its 95 % interval (paper §7: Goat -> Llama VF 0.82, PT 0.78 against 0.66)."""
    source_, ref = "§7", "Goat -> Llama: VF 0.82, PT 0.78; FLoat -> Llama: VF 0.82, PT 0.74; Llama 0.66, FT 0.82"
    if not r.cmap_pairs():
        note = "No CMAP pair patches a fine-tuned model into its base_model on this profile."
        statement = "CMAP of the value fetcher and position transmitter lifts the base"
        return [Claim("Q.cmap_lifts_base", "qualitative", statement, source_, ref, verdict=NOT_APPLICABLE, note=note)]
    out = []
    for ft, base in r.cmap_pairs():
        for group in CMAP_GROUPS:

            def compute(ft: str = ft, base: str = base, group: str = group) -> tuple[Any, bool | None, str]:
                res = r.json(f"cmap/{ft}__{base}.json")
                row, own, src = res["output"][group], res["target_accuracy"], res["source_accuracy"]
                gap = src["accuracy"] - own["accuracy"]
                lift = row["accuracy"] - own["accuracy"]
                ours = {"patched": row["accuracy"], "base": own["accuracy"], "finetuned": src["accuracy"],
                        "heads": row["heads"], "gap_closed": lift / gap if gap > 0 else None}  # fmt: skip
                if not row["patched"]:
                    return ours, None, f"No heads to patch: the fine-tuned circuit's {GROUP_NAMES[group]} set is empty."
                if gap > 0:
                    closed = f"closes {lift / gap:.0%} of the gap to the fine-tuned accuracy"
                else:
                    closed = "the fine-tuned model is not more accurate than its base here, so there is no gap to close"
                interval = f"[{own['ci_low']:.3f}, {own['ci_high']:.3f}]"
                note = f"Lift {lift:+.3f} ({closed}); the base's 95 % interval is {interval}."
                return ours, row["accuracy"] > own["ci_high"], note

            statement = f"Patching {r.label(ft)}'s {GROUP_NAMES[group]} outputs into {r.label(base)} lifts its accuracy"
            claim = Claim(f"Q.cmap_lifts_base.{ft}.{group}", "qualitative", statement, source_, ref,
                          tolerance="patched > the base's 95 % interval")  # fmt: skip
            out.append(_check(claim, compute))
    return out


# knockout claims: (blocked condition, its random control, the paper's Llama numbers)
KNOCKOUT_CLAIMS = (
    ("last_to_query_label", "last_to_random", "last -> query label 0.35-0.39 for s ≤ 11; last -> random 0.62-0.66"),
    ("query_label_to_prev_query_label", "query_label_to_random",
     "query label -> previous query label 0.05-0.19 for s ≤ 7; -> random 0.61-0.66"),
    ("last_to_correct_object", "last_to_random", "last -> correct object 0.04 for s ≤ 15; last -> random 0.62-0.66"),
)  # fmt: skip
KNOCKOUT_NOTE = "Random positions exclude BOS and the answer (the original's randint could hit both)."


def knockout_information_flow(r: Results) -> list[Claim]:
    """Blocking attention along the paper's information paths (paper §8) in the early layers hurts more than
    blocking it to a random position: mean accuracy over start layers s < L/2 (rounded up), by > MARGIN."""
    out = []
    for model in r.knockout_models():
        for blocked, control, ref in KNOCKOUT_CLAIMS:

            def compute(model: str = model, blocked: str = blocked, control: str = control) -> tuple[Any, bool, str]:
                rel = f"knockout/{model}.json"
                early = math.ceil(r.field(rel, "layers") / 2)
                a = r.field(rel, "conditions", blocked, "accuracy")[:early]
                b = r.field(rel, "conditions", control, "accuracy")[:early]
                ours = {
                    "blocked": sum(a) / len(a),
                    "random": sum(b) / len(b),
                    "model": r.field(rel, "no_knockout", "accuracy"),
                }
                note = f"Means over first blocked layers s = 0..{early - 1}. {KNOCKOUT_NOTE}"
                return ours, ours["blocked"] < ours["random"] - MARGIN, note

            frm, to = blocked.split("_to_")
            statement = (f"In {r.label(model)}, blocking attention {frm.replace('_', ' ')} -> {to.replace('_', ' ')} "
                         "in the early layers hurts more than blocking it to a random position")  # fmt: skip
            claim = Claim(f"Q.knockout.{blocked}.{model}", "qualitative", statement, "§8", ref,
                          tolerance=f"mean accuracy < random's - {MARGIN}")  # fmt: skip
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
    "`entity_tracking/claims.py` and the README."
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
