"""A small synthetic results tree in the workflow's formats, for the figure and claims tests.

Every number can be set; the rest is drawn from a seeded generator. Files are written with the
project's own writers (accuracy, faithfulness, completeness and overlap tables).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from entity_tracking.circuit_eval import write_completeness_table, write_faithfulness_table, write_overlap
from entity_tracking.circuits import GROUPS, POSITION_OF, candidates, save_circuit, top_heads
from entity_tracking.evaluation import wilson_interval, write_accuracy_table
from entity_tracking.io import write_json, write_safetensors

SIZES = {"value_fetcher": 3, "pos_transmitter": 2, "pos_detector": 3, "struct_reader": 2}
DEFAULT_MODELS = {
    "organism-base": {"role": "base", "label": "Base organism"},
    "organism-chat": {"role": "finetuned", "base_model": "organism-base", "label": "Chat-tuned (Vicuna's role)"},
    "organism-arith-lora": {"role": "finetuned", "base_model": "organism-base", "label": "Arithmetic LoRA"},
    "organism-arith-full": {"role": "finetuned", "base_model": "organism-base", "label": "Arithmetic full"},
}
PAPER_MODELS = {
    "llama-7b": {"role": "base", "label": "Llama-7B"},
    "vicuna-7b": {"role": "finetuned", "base_model": "llama-7b", "label": "Vicuna-7B"},
    "goat-7b": {"role": "finetuned", "base_model": "llama-7b", "label": "Goat-7B"},
    "float-7b": {"role": "finetuned", "base_model": "llama-7b", "label": "FLoat-7B"},
}


def _eval(model: str, spec: dict[str, Any], acc: float, records: int = 500) -> dict[str, Any]:
    correct = round(acc * records)
    low, high = wilson_interval(correct, records)
    return {
        "model": model,
        "label": spec.get("label", model),
        "role": spec["role"],
        "split": "eval",
        "records": records,
        "correct": correct,
        "accuracy": correct / records,
        "ci_low": low,
        "ci_high": high,
        "confidence": 0.95,
    }


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
    profile: str = "default",
    layers: int = 3,
    heads: int = 4,
    accuracy: dict[str, float] | None = None,
    sizes: dict[str, dict[str, int]] | None = None,
    circuit_accuracy: dict[tuple[str, str], float] | None = None,
    random_accuracy: dict[str, float] | None = None,
    completeness_gap: dict[str, float] | None = None,
    external: tuple[str, ...] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``root/results/<profile>/...`` for ``models``; return the config the claims need.

    ``external`` names extra circuits (copies of the first model's) evaluated on every model, like
    the paper profile's published circuit. Unset circuit accuracies are 0.9 x the model's accuracy.
    """
    models = models or DEFAULT_MODELS
    accuracy, sizes, circuit_accuracy = accuracy or {}, sizes or {}, circuit_accuracy or {}
    random_accuracy, completeness_gap = random_accuracy or {}, completeness_gap or {}
    res = Path(root) / "results" / profile
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
        k["value_fetcher"] += k["pos_transmitter"]  # candidates() drops value fetchers that are transmitters
        cands = candidates({g: scores[f"{g}.prob"] for g in GROUPS}, k)
        circuits[m] = {g: cands[g][: want[g]] for g in GROUPS}
        save_circuit(where / "circuit.json", circuits[m])
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
    return {"profile": profile, "models": models, "dataset": {"num_boxes": 7}}
