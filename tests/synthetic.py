"""A small synthetic results tree in the workflow's formats, for the figure and claims tests.

Every number can be set; the rest is drawn from a seeded generator. Files are written with the
project's own writers (accuracy, faithfulness, completeness and overlap tables).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from entity_tracking.activation_patching import write_activation_patching_table, write_dcm_table
from entity_tracking.circuit_eval import write_completeness_table, write_faithfulness_table, write_overlap
from entity_tracking.circuits import GROUPS, POSITION_OF, Circuit, save_circuit, top_heads
from entity_tracking.cmap import OUTPUT_ORDER, write_cmap_table
from entity_tracking.desiderata import ADDITIONAL, ORIGINAL
from entity_tracking.evaluation import wilson_interval, write_accuracy_table
from entity_tracking.io import write_csv, write_json, write_safetensors
from entity_tracking.knockout import CONDITIONS, write_knockout_table
from entity_tracking.selection import BOOTSTRAP_COLUMNS

SIZES = {"value_fetcher": 3, "pos_transmitter": 2, "pos_detector": 3, "struct_reader": 2}
DEFAULT_MODELS = {
    "organism-base": {"role": "base", "label": "Base organism"},
    "organism-chat": {"role": "finetuned", "base_model": "organism-base", "label": "Chat-tuned (Vicuna's role)"},
    "organism-arith-lora": {"role": "finetuned", "base_model": "organism-base", "label": "Arithmetic LoRA"},
    "organism-arith-full": {"role": "finetuned", "base_model": "organism-base", "label": "Arithmetic full"},
    "organism-code": {"role": "finetuned", "base_model": "organism-base", "label": "Code look-ups"},
    "organism-paraphrase": {"role": "finetuned", "base_model": "organism-base", "label": "Paraphrase"},
}
PAPER_MODELS = {
    "llama-7b": {"role": "base", "label": "Llama-7B"},
    "vicuna-7b": {"role": "finetuned", "base_model": "llama-7b", "label": "Vicuna-7B"},
    "goat-7b": {"role": "finetuned", "base_model": "llama-7b", "label": "Goat-7B"},
    "float-7b": {"role": "finetuned", "base_model": "llama-7b", "label": "FLoat-7B"},
}


def outcomes(acc: float, records: int = 500) -> str:
    """Per-record outcomes with ``acc`` right, the right ones first: two such strings on the same records differ
    in one direction only (a paired test sees every difference as discordant the same way)."""
    correct = round(acc * records)
    return "1" * correct + "0" * (records - correct)


def _accuracy(acc: float, records: int = 500) -> dict[str, Any]:
    """An accuracy entry as evaluation.accuracy writes it (``acc`` rounded to whole prompts)."""
    correct = round(acc * records)
    low, high = wilson_interval(correct, records)
    return {"records": records, "correct": correct, "accuracy": correct / records, "ci_low": low, "ci_high": high,
            "confidence": 0.95, "outcomes": outcomes(acc, records)}  # fmt: skip


def _candidates(scores: dict[str, torch.Tensor], k: dict[str, int]) -> Circuit:
    """The k most negative heads per group, value fetchers that are also transmitters dropped."""
    out = {g: top_heads(scores[g], k[g]) for g in GROUPS}
    out["value_fetcher"] = [h for h in out["value_fetcher"] if h not in out["pos_transmitter"]]
    return out


def _eval(model: str, spec: dict[str, Any], acc: float, records: int = 500) -> dict[str, Any]:
    return {"model": model, "label": spec.get("label", model), "role": spec["role"], "split": "eval",
            **_accuracy(acc, records)}  # fmt: skip


def _scores(rng: torch.Generator, layers: int, heads: int) -> dict[str, torch.Tensor]:
    out = {}
    for g in GROUPS:
        prob = -0.3 * torch.rand(layers, heads, generator=rng) ** 3 + 0.02
        out[f"{g}.prob"], out[f"{g}.logit"] = prob, 4 * prob
    return out


def _completeness(model: str, rng: random.Random, gap: float, full_acc: float) -> dict[str, Any]:
    def row(f_m: float) -> dict[str, Any]:
        f_c = max(0.0, f_m - gap)
        return {"removed": [], "F_C_minus_K": f_c, "F_M_minus_K": f_m, "diff": abs(f_m - f_c)}

    draws = [row(rng.uniform(gap, 0.5)) for _ in range(20)]
    summary = {}
    for key in ("F_C_minus_K", "F_M_minus_K", "diff"):
        values = [d[key] for d in draws]
        mean = sum(values) / len(values)
        summary[key] = {"mean": mean, "std": (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5}
    return {
        "model": model,
        "full_circuit": row(full_acc),
        "random": summary,
        "random_draws": draws,
        "groups": {g: row(rng.uniform(gap, 0.6)) for g in GROUPS},
    }


def write_results(
    root: str | Path,
    models: dict[str, dict[str, Any]] | None = None,
    *,
    study: str = "default",
    layers: int = 3,
    heads: int = 4,
    accuracy: dict[str, float] | None = None,
    sizes: dict[str, dict[str, int]] | None = None,
    circuit_accuracy: dict[tuple[str, str], float] | None = None,
    random_accuracy: dict[str, float] | None = None,
    completeness_gap: dict[str, float] | None = None,
    external: tuple[str, ...] = (),
    dcm: dict[tuple[str, str, str], tuple[float, float]] | None = None,
    activation_patching: dict[tuple[str, str, str, str], tuple[float, float]] | None = None,
    cmap: dict[tuple[str, str], float] | None = None,
    knockout: dict[tuple[str, str], list[float]] | None = None,
    no_signal: dict[str, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``root/results/<study>/...`` for ``models``; return the config the claims need.

    ``external`` names extra circuits (copies of the first model's, found in it) evaluated on every
    model, like the paper study's published circuit. Unset circuit accuracies are 0.9 x the
    model's accuracy. The later stages (see :func:`write_stages`) take the overrides ``dcm``
    ((circuit, group, desideratum) -> (test accuracy, chance floor)), ``activation_patching``
    ((circuit, model, group, desideratum) -> (mean, floor)), ``cmap`` ((source, output group) ->
    accuracy) and ``knockout`` ((model, condition) -> accuracy per start layer). ``no_signal`` (model ->
    stage) marks the stage of a model's path patching that found nothing beyond noise: that group and every
    later one are empty in its circuit, with the statuses rule minimality writes.
    """
    models = models or DEFAULT_MODELS
    accuracy, sizes, circuit_accuracy = accuracy or {}, sizes or {}, circuit_accuracy or {}
    random_accuracy, completeness_gap = random_accuracy or {}, completeness_gap or {}
    res = Path(root) / "results" / study
    gen, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    acc = {m: accuracy.get(m, 0.6 + 0.05 * i) for i, m in enumerate(models)}
    circuits = {}
    for m, spec in models.items():
        write_json(res / "eval" / f"{m}.json", _eval(m, spec, acc[m]))
        write_json(res / "models" / f"{m}.json", {"model": m, "architecture": {"layers": layers, "heads": heads}})
        where = res / "circuits" / m
        scores = _scores(gen, layers, heads)
        write_safetensors(where / "path_patching.safetensors", scores)
        want = sizes.get(m, SIZES)
        k = {g: want[g] + 1 for g in GROUPS}
        k["value_fetcher"] += k["pos_transmitter"]  # _candidates() drops value fetchers that are transmitters
        cands = _candidates({g: scores[f"{g}.prob"] for g in GROUPS}, k)
        stop = GROUPS.index(no_signal[m]) if no_signal and m in no_signal else len(GROUPS)
        status = {g: {"status": "signal" if i < stop else "no signal" if i == stop else "not run", "reason": ""}
                  for i, g in enumerate(GROUPS)}  # fmt: skip
        cands = {g: cands[g] if i < stop else [] for i, g in enumerate(GROUPS)}
        circuits[m] = {g: cands[g][: want[g]] for g in GROUPS}
        save_circuit(where / "circuit.json", circuits[m], status)
        _bootstrap_csv(where / "bootstrap.csv", circuits[m], status, layers, heads, rng)
        write_json(
            where / "minimality.json", {"model": m, "candidates": {g: [list(h) for h in cands[g]] for g in GROUPS}}
        )
        stages, previous = {}, []
        for g in GROUPS:
            top = top_heads(scores[f"{g}.prob"], 2)
            stages[g] = {
                "position": POSITION_OF[g],
                "receivers": [list(h) for h in previous],
                "top": [list(h) for h in top],
            }
            previous = top
        write_json(where / "path_patching.json", {"model": m, "stages": stages})
    for name in external:
        circuits[name] = circuits[next(iter(models))]
        save_circuit(res / "circuits" / name / "circuit.json", circuits[name])
    faith_files = []
    for c in circuits:
        for m in models:
            c_acc = circuit_accuracy.get((c, m), 0.9 * acc[m])
            rand = random_accuracy.get(m, 0.01)
            result = {
                "circuit": c,
                "model": m,
                "records": 500,
                "sizes": {g: len(circuits[c][g]) for g in GROUPS},
                "model_accuracy": acc[m],
                "circuit_accuracy": c_acc,
                "faithfulness": c_acc / acc[m],
                "faithfulness_paper": round(round(c_acc, 2) / round(acc[m], 2), 2),
                "random_accuracy_mean": rand,
                "random_accuracy_std": 0.0,
                "random_accuracies": [rand] * 5,
            }
            path = res / "faithfulness" / c / f"{m}.json"
            write_json(path, result)
            faith_files.append(path)
    comp_files = []
    for m in models:
        path = res / "completeness" / f"{m}.json"
        write_json(path, _completeness(m, rng, completeness_gap.get(m, 0.05), acc[m]))
        comp_files.append(path)
    write_accuracy_table([res / "eval" / f"{m}.json" for m in models], res / "accuracy.csv")
    write_faithfulness_table(faith_files, res / "faithfulness.csv")
    write_completeness_table(comp_files, res / "completeness.csv")
    names = list(circuits)
    files = [res / "circuits" / n / "circuit.json" for n in names]
    write_overlap(names, files, res / "circuit_overlap.csv", res / "circuit_overlap.json")
    found_in = {name: next(iter(models)) for name in external}
    write_stages(res, models, circuits, found_in, acc, layers, rng, dcm, activation_patching, cmap, knockout)
    return {
        "study": study,
        "models": models,
        "dataset": {"num_boxes": 7},
        "circuit": {"external": {name: {"found_in": m} for name, m in found_in.items()}},
    }


def _bootstrap_csv(
    path: Path, circuit: Circuit, status: dict[str, dict[str, str]], layers: int, heads: int, rng: random.Random
) -> None:
    """A bootstrap.csv as rule bootstrap writes it: circuit heads selected often, the others rarely."""
    rows = []
    for g in GROUPS:
        if status[g]["status"] == "not run":
            continue
        for layer in range(layers):
            for head in range(heads):
                inside = (layer, head) in circuit[g]
                freq = round(rng.uniform(0.6, 1.0) if inside else rng.uniform(0.0, 0.3), 3)
                rows.append({"group": g, "layer": layer, "head": head, "stage_status": status[g]["status"],
                             "eligible": 1, "mean": -freq / 10, "se": 0.01, "p": 0.01, "p_adjusted": 0.02,
                             "qualifies": int(inside), "candidate": int(inside), "in_circuit": int(inside),
                             "frequency": freq})  # fmt: skip
    write_csv(path, BOOTSTRAP_COLUMNS, rows)


FLOORS = {"positional": 0.05, "object_value": 0.0, "box_label_value": 0.05}  # others: 0.06


def write_stages(
    res: Path,
    models: dict[str, dict[str, Any]],
    circuits: dict[str, Circuit],
    found_in: dict[str, str],
    acc: dict[str, float],
    layers: int,
    rng: random.Random,
    dcm: dict[tuple[str, str, str], tuple[float, float]] | None = None,
    activation_patching: dict[tuple[str, str, str, str], tuple[float, float]] | None = None,
    cmap: dict[tuple[str, str], float] | None = None,
    knockout: dict[tuple[str, str], list[float]] | None = None,
) -> None:
    """DCM, activation patching, CMAP and knockout files and tables, in the formats of their rules.

    Unset numbers are drawn: DCM and activation patching above their floors, CMAP around the
    target's accuracy (an empty head set keeps it exactly), knockout curves that recover with s.
    """
    dcm, activation_patching, cmap, knockout = dcm or {}, activation_patching or {}, cmap or {}, knockout or {}
    jobs = [(g, d) for g in GROUPS for d in ORIGINAL] + [("pos_transmitter", d) for d in ADDITIONAL]
    dcm_circuits = {m: m for m in models} | found_in
    selected, dcm_files = {}, []
    for c, model in dcm_circuits.items():
        for g, d in jobs:
            heads = circuits[c][g]
            chosen = heads[: rng.randint(1, len(heads))] if heads else []
            floor = FLOORS.get(d, 0.06)
            test, floor = dcm.get((c, g, d), (floor + (rng.uniform(0, 0.3) if chosen else 0.0), floor))
            selected[(c, g, d)] = chosen
            path = res / "dcm" / c / g / f"{d}.json"
            write_json(path, {
                "circuit": c, "model": model, "group": g, "desideratum": d, "position": POSITION_OF[g],
                "heads": [list(h) for h in heads], "mask": [0.0 if h in chosen else 1.0 for h in heads],
                "selected": [list(h) for h in chosen],
                "validation": [{"step": 0, "loss": -1.0, "val_accuracy": test, "selected": len(chosen)}],
                "best_step": 0, "val_accuracy": test, "test_accuracy": test, "chance_floor": floor,
                "test_outcomes": outcomes(test, 504), "floor_outcomes": outcomes(floor, 504),
                "records": {"dcm_train": 504, "dcm_val": 252, "dcm_test": 504},
            })  # fmt: skip
            dcm_files.append(path)
    write_dcm_table(dcm_files, res / "dcm.csv")

    def stats(mean: float) -> dict[str, Any]:
        return {"values": [mean] * 3, "mean": mean, "std": 0.0}

    ap_files = []
    for m in models:
        cells: dict[str, Any] = {}
        for c in dcm_circuits:
            for g, d in jobs:
                floor = FLOORS.get(d, 0.06)
                drawn = floor + (rng.uniform(0, 0.3) if selected[(c, g, d)] else 0.0)
                mean, floor = activation_patching.get((c, m, g, d), (drawn, floor))
                heads = [list(h) for h in selected[(c, g, d)]]
                cell = {"heads": heads, "accuracy": stats(mean), "chance_floor_mean": floor}
                cells.setdefault(c, {}).setdefault(g, {})[d] = cell
        path = res / "activation_patching" / f"{m}.json"
        write_json(path, {
            "model": m, "split": "dcm_test", "records": 504, "repeats": 3, "seeds": ["20:0", "20:1", "20:2"],
            "chance_floor": {d: stats(FLOORS.get(d, 0.06)) for _, d in jobs}, "circuits": cells,
        })  # fmt: skip
        ap_files.append(path)
    write_activation_patching_table(ap_files, res / "activation_patching.csv")

    cmap_files = []
    for source, spec in models.items():
        target = spec.get("base_model")
        if spec["role"] != "finetuned" or not target:
            continue
        sizes = {g: len(circuits[source][g]) for g in GROUPS} | {
            "full_circuit": sum(map(len, circuits[source].values()))
        }

        def entry(n: int, value: float, base: float = acc[target]) -> dict[str, Any]:
            return {"heads": n, "patched": n > 0, **_accuracy(value if n else base)}

        output = {}
        for g in OUTPUT_ORDER:
            drawn = acc[target] + rng.uniform(-0.05, 0.1)
            output[g] = {"positions": [], **entry(sizes[g], cmap.get((source, g), drawn))}
        inputs: dict[str, Any] = {}
        for g in ("value_fetcher", "pos_transmitter"):
            for v in ("q", "k", "v", "qk", "qkv"):
                drawn = acc[target] + rng.uniform(-0.05, 0.1)
                inputs.setdefault(g, {})[v] = {"kv_heads": [], **entry(sizes[g], drawn)}
        path = res / "cmap" / f"{source}__{target}.json"
        write_json(path, {
            "source": source, "target": target, "circuit": source, "circuit_of": "source", "records": 500,
            "source_accuracy": _accuracy(acc[source]), "target_accuracy": _accuracy(acc[target]),
            "head_sets": {g: {"from": "circuit", "heads": [list(h) for h in circuits[source][g]]} for g in GROUPS},
            "output": output, "input": inputs, "input_mode": "paper",
        })  # fmt: skip
        cmap_files.append(path)
    write_cmap_table(cmap_files, res / "cmap.csv")

    knockout_files = []
    for m in models:
        conditions = {}
        for name, (src, dst) in CONDITIONS.items():
            low = acc[m] - 0.02 if dst == "random" else 0.05
            curve = [low + (acc[m] - low) * s / max(1, layers - 1) for s in range(layers)]
            values = knockout.get((m, name), curve)
            rows = [{"start_layer": s, **_accuracy(v)} for s, v in enumerate(values)]
            conditions[name] = {"from": src, "to": dst, "accuracy": [r["accuracy"] for r in rows], "curve": rows}
        path = res / "knockout" / f"{m}.json"
        write_json(path, {"model": m, "records": 500, "layers": layers, "seed": 5, "no_knockout": _accuracy(acc[m]),
                          "conditions": conditions})  # fmt: skip
        knockout_files.append(path)
    write_knockout_table(knockout_files, res / "knockout.csv")


def record_results(root: str | Path, study: str = "default") -> None:
    """One job record claiming every file of the synthetic results tree, so that the workflow's integrity
    check (entity_tracking.integrity) accepts them as made by a job when rules read them."""
    from entity_tracking.io import sha256_file
    from entity_tracking.layout import RECORDS

    results = Path(root) / "results" / study
    files = sorted(p for p in results.rglob("*") if p.is_file() and RECORDS not in p.parts)
    outputs = {str(p.relative_to(root)): sha256_file(p) for p in files}
    write_json(results / RECORDS / "synthetic.json", {"rule": "synthetic", "wildcards": {}, "outputs": outputs})
