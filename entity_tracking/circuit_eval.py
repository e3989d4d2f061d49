"""Circuit evaluation: faithfulness of every circuit on every model, completeness, overlap.

* **Faithfulness** = accuracy of the model mean-ablated down to the circuit / the model's own
  accuracy, at full precision; the paper's form (both accuracies rounded to 0.01, the ratio to
  0.01) is reported beside it. A random-circuit baseline with the same group sizes (heads drawn
  without replacement) is averaged over several seeded draws.
* **Completeness** (each model's own circuit): for random subsets K of the circuit's nodes (each
  node removed with probability 1/2) and for each whole group, ``|F(C \\ K) - F(M \\ K)|`` where
  F(C \\ K) is the accuracy of the circuit without K and F(M \\ K) that of the full model with only
  K's heads mean-ablated at their positions.
* **Overlap** of every pair of circuits: per group, intersection, precision and recall.
"""

from __future__ import annotations

import csv
import random
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from entity_tracking.ablation import AblationRuns, Ablator, load_ablator
from entity_tracking.circuits import (
    GROUPS,
    POSITION_OF,
    Circuit,
    circuit_nodes,
    full_model_keep,
    keep_sets,
    load_circuit,
    overlap,
    random_circuit,
)
from entity_tracking.interventions import ModelParts
from entity_tracking.io import atomic_write, read_json, sha256_file, write_csv, write_json
from entity_tracking.model_specs import ModelSource


def _paper_ratio(numerator: float, denominator: float) -> float | None:
    """The original's faithfulness: a ratio of accuracies rounded to 0.01, itself rounded."""
    den = round(denominator, 2)
    return round(round(numerator, 2) / den, 2) if den else None


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def _setup(source: ModelSource, circuit_file: str | Path, runs: AblationRuns) -> tuple[ModelParts, Ablator, Circuit]:
    """The model's parts, an evaluator of mean-ablated head sets on the split, and the circuit (checked)."""
    parts, ablator = load_ablator(source, runs)
    return parts, ablator, load_circuit(circuit_file, parts.num_layers, parts.heads)


def run_faithfulness(
    circuit_name: str,
    circuit_file: str | Path,
    source: ModelSource,
    runs: AblationRuns,
    out_json: str | Path,
    seed: int,
    random_draws: int,
) -> dict[str, Any]:
    """Rule faithfulness: one circuit on one model, against ``random_draws`` random circuits of its sizes."""
    model = source.name
    parts, ablator, circuit = _setup(source, circuit_file, runs)
    model_acc = ablator.accuracy(None)
    circuit_acc = ablator.accuracy(keep_sets(circuit))
    rng = random.Random(seed)
    sizes = {g: len(circuit[g]) for g in GROUPS}
    random_accs = [
        ablator.accuracy(keep_sets(random_circuit(rng, sizes, parts.num_layers, parts.heads)))
        for _ in tqdm(range(random_draws), desc=f"random circuits on {model}", leave=False, disable=None)
    ]
    random_mean, random_std = _mean_std(random_accs)
    result = {
        "circuit": circuit_name,
        "model": model,
        "records": len(ablator.enc),
        "data_sha256": sha256_file(runs.data_file),
        "circuit_sha256": sha256_file(circuit_file),
        "sizes": sizes,
        "model_accuracy": model_acc,
        "circuit_accuracy": circuit_acc,
        "faithfulness": circuit_acc / model_acc if model_acc else None,
        "faithfulness_paper": _paper_ratio(circuit_acc, model_acc),
        "random_accuracy_mean": random_mean,
        "random_accuracy_std": random_std,
        "random_accuracies": random_accs,
    }
    write_json(out_json, result)
    return result


def run_completeness(
    source: ModelSource,
    circuit_file: str | Path,
    runs: AblationRuns,
    out_json: str | Path,
    seed: int,
    draws: int,
) -> dict[str, Any]:
    """Rule completeness: a model's own circuit, ``draws`` random subsets K and each whole group."""
    model = source.name
    parts, ablator, circuit = _setup(source, circuit_file, runs)
    nodes = circuit_nodes(circuit)

    def scores(removed: list[Any]) -> dict[str, Any]:
        f_c = ablator.accuracy(keep_sets(circuit, removed))
        f_m = ablator.accuracy(full_model_keep(parts.num_layers, parts.heads, removed), ablate_context=False)
        return {
            "removed": [[pos, list(h)] for pos, h in removed],
            "F_C_minus_K": f_c,
            "F_M_minus_K": f_m,
            "diff": abs(f_c - f_m),
        }

    rng = random.Random(seed)
    drawn = []
    for _ in tqdm(range(draws), desc=f"completeness {model}", leave=False, disable=None):
        drawn.append(scores([n for n in nodes if rng.random() < 0.5]))
    groups = {g: scores([(POSITION_OF[g], h) for h in circuit[g]]) for g in GROUPS}
    summary = {}
    for key in ("F_C_minus_K", "F_M_minus_K", "diff"):
        mean, std = _mean_std([d[key] for d in drawn])
        summary[key] = {"mean": mean, "std": std}
    result = {
        "model": model,
        "records": len(ablator.enc),
        "data_sha256": sha256_file(runs.data_file),
        "circuit_sha256": sha256_file(circuit_file),
        "full_circuit": scores([]),
        "random": summary,
        "random_draws": drawn,
        "groups": groups,
    }
    write_json(out_json, result)
    return result


FAITHFULNESS_COLUMNS = (
    "circuit",
    "model",
    "records",
    "model_accuracy",
    "circuit_accuracy",
    "faithfulness",
    "faithfulness_paper",
    "random_accuracy_mean",
    "random_accuracy_std",
)


def write_faithfulness_table(files: Sequence[str | Path], out_csv: str | Path) -> None:
    """One row per (circuit, model) pair."""
    write_csv(out_csv, FAITHFULNESS_COLUMNS, (read_json(path) for path in files))


def write_completeness_table(files: Sequence[str | Path], out_csv: str | Path) -> None:
    """Per model: the random-K summary (mean and std) and each whole group."""
    with atomic_write(out_csv) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            ["model", "K", "F_C_minus_K", "F_C_minus_K_std", "F_M_minus_K", "F_M_minus_K_std", "diff", "diff_std"]
        )
        for path in files:
            res = read_json(path)
            r = res["random"]
            writer.writerow(
                [
                    res["model"],
                    "random",
                    *(r[k][s] for k in ("F_C_minus_K", "F_M_minus_K", "diff") for s in ("mean", "std")),
                ]
            )
            for g, row in res["groups"].items():
                writer.writerow([res["model"], g, row["F_C_minus_K"], "", row["F_M_minus_K"], "", row["diff"], ""])


def write_overlap(
    names: Sequence[str],
    files: Sequence[str | Path],
    out_csv: str | Path,
    out_json: str | Path,
    bootstrap: dict[str, str | Path] | None = None,
) -> None:
    """Overlap of every ordered pair of circuits (precision is relative to the first, recall to the second).

    With ``bootstrap`` (model -> its ``bootstrap.json``), each row also has the overlap of the two models'
    candidate sets (``candidate_*``) beside the overlap expected from resampling alone: the share of the
    first model's candidates that a resample of its own discovery prompts selects again (mean and 95 %
    interval). A between-model share inside that interval differs by no more than resampling noise.
    """
    circuits: dict[str, Circuit] = {n: load_circuit(f) for n, f in zip(names, files, strict=True)}
    boot = {m: read_json(p) for m, p in (bootstrap or {}).items()}
    cands = {m: {g: [tuple(h) for h in b["candidates"][g]] for g in GROUPS} for m, b in boot.items()}
    rows = []
    for a in names:
        for b in names:
            if a == b:
                continue
            pair_cands = overlap(cands[a], cands[b]) if a in cands and b in cands else {}
            for group, stats in overlap(circuits[a], circuits[b]).items():
                row: dict[str, Any] = {"circuit_a": a, "circuit_b": b, "group": group, **stats}
                if group in pair_cands:
                    c = pair_cands[group]
                    row |= {
                        "candidates_a": c["size_a"],
                        "candidates_b": c["size_b"],
                        "candidate_intersection": c["intersection"],
                        "candidate_precision": c["precision"],
                    }
                    agree = boot[a]["candidate_agreement"].get(group)
                    if agree is not None:
                        row |= {f"resampling_precision_{k}": agree[k] for k in ("mean", "low", "high")}
                rows.append(row)
    write_csv(out_csv, OVERLAP_COLUMNS, rows)
    write_json(out_json, rows)


OVERLAP_COLUMNS = (
    "circuit_a",
    "circuit_b",
    "group",
    "size_a",
    "size_b",
    "intersection",
    "precision",
    "recall",
    "candidates_a",
    "candidates_b",
    "candidate_intersection",
    "candidate_precision",
    "resampling_precision_mean",
    "resampling_precision_low",
    "resampling_precision_high",
)
