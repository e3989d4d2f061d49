"""Activation patching, the paper's "semantic results": DCM's heads patched into every model.

For every circuit with DCM results, group and desideratum, the heads DCM selected (on the
circuit's own model) are patched fully from the source into a model's run on the base prompt, at
the group's position, each prompt at its own position (as DCM; the original's differs:
docs/differences.md). The score is the share of
predictions equal to the desideratum's label, over several repeats, each with fresh seeded
source pairings of a held-out split; beside it, the chance floor of the same pairs (no patching).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.circuits import POSITION_OF
from entity_tracking.dcm import BaseRuns, accuracy_with, encode_pairs
from entity_tracking.desiderata import build_examples
from entity_tracking.interventions import ModelParts
from entity_tracking.io import read_json, read_jsonl, sha256_file, write_csv, write_json
from entity_tracking.layout import dcm_result_path
from entity_tracking.model_specs import ModelSource
from entity_tracking.tokenization import encode_records

log = logging.getLogger(__name__)


def _stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "values": list(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
    }


def selected_heads(dcm_root: str | Path, circuit: str, group: str, desideratum: str) -> list[tuple[int, int]]:
    """The heads DCM selected for (circuit, group, desideratum)."""
    result = read_json(dcm_result_path(dcm_root, circuit, group, desideratum))
    return [(layer, head) for layer, head in result["selected"]]


def run_activation_patching(
    source: ModelSource,
    circuits: Sequence[str],
    data_file: str | Path,
    dcm_root: str | Path,
    out_json: str | Path,
    plan: Sequence[tuple[str, str]],
    seed: int,
    repeats: int,
    batch_size: int,
    cache_clean_runs: bool,
) -> dict[str, Any]:
    """Rule activation_patching: the heads DCM selected for each circuit and (group, desideratum) of ``plan``,
    patched into the model, on ``repeats`` draws of pairs (seeds ``<seed>:<repeat>``)."""
    from entity_tracking.models import load_source

    model = source.name
    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    records = read_jsonl(data_file)
    split = Path(data_file).stem
    base = encode_records(loaded.tokenizer, records, vocab)
    runs = BaseRuns(parts, base, batch_size, cache_clean_runs)
    heads = {(c, g, d): selected_heads(dcm_root, c, g, d) for c in circuits for g, d in plan}
    for (c, _, _), hs in heads.items():
        bad = [h for h in hs if h[0] >= parts.num_layers or h[1] >= parts.heads]
        if bad:
            raise ValueError(f"circuit {c!r} selects heads {bad[:3]} that model {model!r} does not have")
    acc: dict[tuple[str, str, str], list[float]] = {key: [] for key in heads}
    floors: dict[str, list[float]] = {}
    seeds = [f"{seed}:{r}" for r in range(repeats)]
    desiderata = list(dict.fromkeys(d for _, d in plan))
    with tqdm(total=len(desiderata) * repeats, desc=f"activation patching {model}", leave=False, disable=None) as bar:
        for desideratum in desiderata:
            groups = [g for g, d in plan if d == desideratum]
            for draw in seeds:
                examples = build_examples(desideratum, records, draw, split)
                pairs = encode_pairs(loaded.tokenizer, examples, records, base, vocab)
                floor = accuracy_with(parts, runs, pairs, [], torch.ones(0), "last", [])
                floors.setdefault(desideratum, []).append(floor)
                src = runs.sources(pairs, list(dict.fromkeys(POSITION_OF[g] for g in groups)))
                for circuit in circuits:
                    for group in groups:
                        hs = heads[(circuit, group, desideratum)]
                        keep = torch.zeros(len(hs))  # patch fully
                        pos = POSITION_OF[group]
                        acc[(circuit, group, desideratum)].append(
                            accuracy_with(parts, runs, pairs, hs, keep, pos, src[pos])
                        )
                bar.update()
    result: dict[str, Any] = {
        "model": model,
        "split": split,
        "records": len(records),
        "data_sha256": sha256_file(data_file),
        "repeats": repeats,
        "seeds": seeds,
        "chance_floor": {d: _stats(v) for d, v in floors.items()},
        "circuits": {},
    }
    for (circuit, group, desideratum), values in acc.items():
        cell = {"heads": [list(h) for h in heads[(circuit, group, desideratum)]], "accuracy": _stats(values)}
        cell["chance_floor_mean"] = result["chance_floor"][desideratum]["mean"]
        result["circuits"].setdefault(circuit, {}).setdefault(group, {})[desideratum] = cell
    write_json(out_json, result)
    return result


AP_COLUMNS = ("circuit", "model", "group", "desideratum", "heads", "accuracy_mean", "accuracy_std",
              "chance_floor_mean", "repeats", "records")  # fmt: skip


def write_activation_patching_table(files: Sequence[str | Path], out_csv: str | Path) -> None:
    """One row per circuit x model x group x desideratum."""
    rows = []
    for path in files:
        res = read_json(path)
        for circuit, groups in res["circuits"].items():
            for group, cells in groups.items():
                for desideratum, cell in cells.items():
                    rows.append(
                        {
                            "circuit": circuit,
                            "model": res["model"],
                            "group": group,
                            "desideratum": desideratum,
                            "heads": len(cell["heads"]),
                            "accuracy_mean": cell["accuracy"]["mean"],
                            "accuracy_std": cell["accuracy"]["std"],
                            "chance_floor_mean": cell["chance_floor_mean"],
                            "repeats": res["repeats"],
                            "records": res["records"],
                        }
                    )
    write_csv(out_csv, AP_COLUMNS, rows)


DCM_COLUMNS = ("circuit", "model", "group", "desideratum", "heads", "selected", "selected_heads", "val_accuracy",
               "test_accuracy", "chance_floor")  # fmt: skip


def write_dcm_table(files: Sequence[str | Path], out_csv: str | Path) -> None:
    """One row per circuit x group x desideratum."""
    rows = []
    for path in files:
        res = read_json(path)
        rows.append(
            {
                **res,
                "heads": len(res["heads"]),
                "selected": len(res["selected"]),
                "selected_heads": " ".join(f"{layer}.{head}" for layer, head in res["selected"]),
            }
        )
    write_csv(out_csv, DCM_COLUMNS, rows)
