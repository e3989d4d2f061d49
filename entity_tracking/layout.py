"""Where a study's files live, and which DCM jobs a config plans: the one home of every path under
``results/<study>/``, shared by the rules that plan the jobs and the modules that write and read the files.
Torch-free: the Snakefile imports it to plan the DAG.

A file is named by its key in ``FILES`` (a template relative to ``results/<study>/``); ``result`` fills in the
fields it is given and leaves the others as ``{field}``, which the rules use as Snakemake wildcards. A module
that writes or reads inside a folder a rule hands it uses the folder's own template (``SPLIT_FILE``,
``DESIDERATUM_FILE``, ``DCM_FILE``, ``MANIFEST``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from entity_tracking.circuits import GROUPS

# Names inside a folder, used by the modules that write the folder and by FILES below.
MANIFEST = "manifest.json"
SPLIT_FILE = "{split}.jsonl"  # in data/
DESIDERATUM_FILE = "{desideratum}/{split}.jsonl"  # in desiderata/
DCM_FILE = "{circuit}/{group}/{desideratum}.json"  # in dcm/
RECORDS = ".provenance"  # the job records: <rule>[/<wildcards>].json

# Every file of a study's results, relative to results/<study>/.
FILES: dict[str, str] = {
    # the task data (rule dataset)
    "data": f"data/{SPLIT_FILE}",
    "data_manifest": f"data/{MANIFEST}",
    # models: checkpoints the DAG makes (kind: pretrained, finetuned, converted) and model cards
    "checkpoint": "checkpoints/{kind}/{model}",
    "model_card": "models/{model}.json",
    # task accuracy
    "eval": "eval/{model}.json",
    "predictions": "eval/{model}_predictions.csv",
    "accuracy_table": "accuracy.csv",
    # circuit discovery (per model) and circuits (a model's own, or an external one)
    "path_patching": "circuits/{model}/path_patching.safetensors",
    "path_patching_summary": "circuits/{model}/path_patching.json",
    "minimality": "circuits/{model}/minimality.json",
    "bootstrap_csv": "circuits/{model}/bootstrap.csv",
    "bootstrap_json": "circuits/{model}/bootstrap.json",
    "circuit": "circuits/{circuit}/circuit.json",
    # circuit evaluation
    "means": "means/{model}.safetensors",
    "faithfulness": "faithfulness/{circuit}/{model}.json",
    "faithfulness_table": "faithfulness.csv",
    "completeness": "completeness/{model}.json",
    "completeness_table": "completeness.csv",
    "overlap_csv": "circuit_overlap.csv",
    "overlap_json": "circuit_overlap.json",
    # DCM and activation patching
    "desiderata_dir": "desiderata",
    "desiderata": f"desiderata/{DESIDERATUM_FILE}",
    "desiderata_manifest": f"desiderata/{MANIFEST}",
    "dcm_dir": "dcm",
    "dcm": f"dcm/{DCM_FILE}",
    "dcm_table": "dcm.csv",
    "activation_patching": "activation_patching/{model}.json",
    "activation_patching_table": "activation_patching.csv",
    # CMAP (pair: <source>__<target>) and attention knockout
    "cmap": "cmap/{pair}.json",
    "cmap_table": "cmap.csv",
    "knockout": "knockout/{model}.json",
    "knockout_table": "knockout.csv",
    # the claims report, the hash manifest, the run's provenance and the job records
    "claims_md": "claims.md",
    "claims_json": "claims.json",
    "claims_html": "claims.html",
    "manifest": MANIFEST,
    "provenance": "provenance.json",
    "records": RECORDS,
}


def results_dir(study: str) -> str:
    return f"results/{study}"


def expected_manifest(study: str) -> str:
    """The committed manifest a study's run must equal (``verify``), relative to the repository."""
    return f"results/expected/{study}-manifest.json"


def expected_values(study: str) -> str:
    """The committed numbers of a study's expected JSON and CSV files, which ``verify`` compares by value when
    this run's arithmetic (processor, torch) differs from the expected run's, relative to the repository."""
    return f"results/expected/{study}-values.json"


def figures_dir(study: str) -> str:
    return f"figures/{study}"


def logs_dir(study: str) -> str:
    """Logs and timings: outside results/, so no timing enters the hash manifest."""
    return f"logs/{study}"


def fill(template: str, **fields: Any) -> str:
    """``template`` with the given fields filled in; any other ``{field}`` stays as it is (a wildcard)."""
    parts = list(string.Formatter().parse(template))
    unknown = set(fields) - {field for _, field, _, _ in parts}
    if unknown:
        raise KeyError(f"{template!r} has no field {sorted(unknown)}")
    out = []
    for literal, field, _, _ in parts:
        out.append(literal)
        if field is not None:
            out.append(str(fields[field]) if field in fields else f"{{{field}}}")
    return "".join(out)


def result(results: str | Path, name: str, **fields: Any) -> str:
    """The file ``name`` of ``FILES`` under the results folder ``results`` (``results/<study>``)."""
    return f"{results}/{fill(FILES[name], **fields)}"


def relative(name: str, **fields: Any) -> str:
    """The file ``name`` relative to the results folder."""
    return fill(FILES[name], **fields)


def pair_name(source: str, target: str) -> str:
    """A CMAP pair's name, as in its result file ``cmap/<source>__<target>.json``."""
    return f"{source}__{target}"


DCM_SPLITS: tuple[str, ...] = ("dcm_train", "dcm_val", "dcm_test")  # DCM's train, validation and test data


def dcm_circuits(cfg: Mapping[str, Any]) -> dict[str, str]:
    """The circuits DCM runs on, with the model each was found in: every model's own, and the external circuits
    that name their ``found_in`` model."""
    external = (cfg.get("circuit") or {}).get("external") or {}
    return {m: m for m in cfg["models"]} | {c: e["found_in"] for c, e in external.items() if e.get("found_in")}


def dcm_plan(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (group, desideratum) DCM runs: the main desiderata on every group, the additional ones on theirs."""
    settings = cfg["dcm"]
    main, extra = settings["desiderata"], settings["additional_desiderata"]
    return [(g, d) for g in GROUPS for d in main] + [(g, d) for g in settings["additional_groups"] for d in extra]


def dcm_desiderata(cfg: Mapping[str, Any]) -> list[str]:
    """The desiderata DCM learns masks for, in plan order: those the desiderata rule makes pairs for."""
    return list(dict.fromkeys(d for _, d in dcm_plan(cfg)))


def data_file(folder: str | Path, split: str) -> Path:
    """A split of the task data in its folder (``results/<study>/data``)."""
    return Path(folder) / fill(SPLIT_FILE, split=split)


def desiderata_file(folder: str | Path, desideratum: str, split: str) -> Path:
    """A desideratum's pairs of one split in their folder (``results/<study>/desiderata``)."""
    return Path(folder) / fill(DESIDERATUM_FILE, desideratum=desideratum, split=split)


def dcm_result_path(folder: str | Path, circuit: str, group: str, desideratum: str) -> Path:
    """A DCM result in its folder (``results/<study>/dcm``)."""
    return Path(folder) / fill(DCM_FILE, circuit=circuit, group=group, desideratum=desideratum)


def circuit_name(cfg: Mapping[str, Any], source: str, target: str) -> str:
    """Whose circuit (and DCM results) give a CMAP pair's head sets: ``cmap.circuit_of``."""
    return source if cfg["cmap"]["circuit_of"] == "source" else target


def dcm_desideratum(spec: str) -> str | None:
    """A head-set spec is ``circuit`` (the circuit's group) or ``dcm:<desideratum>`` (the heads DCM selected)."""
    return spec.partition(":")[2] if spec.startswith("dcm:") else None


def head_set_files(cfg: Mapping[str, Any], source: str, target: str, results: str) -> tuple[str, dict[str, str]]:
    """A CMAP pair's circuit file and, per group whose heads come from DCM, the DCM result file it reads."""
    name = circuit_name(cfg, source, target)
    specs = {g: dcm_desideratum(spec) for g, spec in cfg["cmap"]["heads"].items()}
    dcm = {g: result(results, "dcm", circuit=name, group=g, desideratum=d) for g, d in specs.items() if d}
    return result(results, "circuit", circuit=name), dcm
