"""Where the DCM and CMAP stages keep their files, and which DCM jobs a config plans: shared by the rules that
plan them and the modules that write and read them. Torch-free: the Snakefile imports it to plan the DAG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from entity_tracking.circuits import GROUPS


def dcm_plan(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (group, desideratum) DCM runs: the main desiderata on every group, the additional ones on theirs."""
    settings = cfg["dcm"]
    main, extra = settings["desiderata"], settings["additional_desiderata"]
    return [(g, d) for g in GROUPS for d in main] + [(g, d) for g in settings["additional_groups"] for d in extra]


def dcm_desiderata(cfg: Mapping[str, Any]) -> list[str]:
    """The desiderata DCM learns masks for, in plan order: those the desiderata rule makes pairs for."""
    return list(dict.fromkeys(d for _, d in dcm_plan(cfg)))


def dcm_result_path(root: str | Path, circuit: str, group: str, desideratum: str) -> Path:
    """A DCM result: ``<root>/<circuit>/<group>/<desideratum>.json`` (root: ``results/<study>/dcm``)."""
    return Path(root) / circuit / group / f"{desideratum}.json"


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
    dcm = {g: str(dcm_result_path(f"{results}/dcm", name, g, d)) for g, d in specs.items() if d}
    return f"{results}/circuits/{name}/circuit.json", dcm
