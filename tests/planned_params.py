"""Which jobs' params change when one config key changes: Snakemake plans (in this process, nothing runs) a
forced run of a checkout once as it is and once per perturbed key, and the jobs present in both plans whose
params differ are the ones Snakemake reruns because of that key.

    python -m tests.planned_params ROOT [KEY ...]
    # prints JSON {key: {"value": new, "jobs": {job: [params that changed]}} | {"skipped": why} | ...}

Without keys, every leaf of the checkout's resolved config is perturbed (``study_keys``), but of the models'
keys only those of one model of each kind (how it is made: its source, and a fine-tune's method), whose
keys the rules treat alike.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# Keys that are not perturbed, and why.
NOT_PERTURBED = {
    "study": "names the study: another value is another study, every path changes",
    "models.organism-base.path": "a model's directory: its files are inputs of the jobs that load it",
}


def plan(root: Path, config: dict[str, Any], describe: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """``{job id: params}`` of every job of a forced run of the checkout in ``root`` with ``config`` overrides
    (or ``{job id: describe(job)}``, for a Snakemake job)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings

    from entity_tracking.provenance import job_id, portable

    cwd = os.getcwd()
    try:
        quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
        with quiet[0], quiet[1], SnakemakeApi(OutputSettings()) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(config=config),
                storage_settings=StorageSettings(),
                snakefile=root / "Snakefile",
                workdir=root,
            )
            workflow_api.dag(DAGSettings())
            workflow = workflow_api._workflow
            workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
            workflow._build_dag()
            describe = describe or (lambda job: portable(dict(job.params.items()), root))
            return {job_id(job.rule.name, dict(job.wildcards_dict)): describe(job) for job in workflow.dag.jobs}
    finally:
        os.chdir(cwd)


def enums(schema: Any) -> list[list[Any]]:
    """Every ``enum`` list of the config schema."""
    if isinstance(schema, dict):
        return ([schema["enum"]] if isinstance(schema.get("enum"), list) else []) + [
            e for v in schema.values() for e in enums(v)
        ]
    if isinstance(schema, list):
        return [e for v in schema for e in enums(v)]
    return []


def candidates(value: Any, choices: list[list[Any]]) -> list[Any]:
    """Other values of the same kind: a flipped bool, a number changed, another value of an enum holding a string
    (or the string extended), a list without its last item."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1]
    if isinstance(value, float):
        return [value / 2]
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):  # a sha256
        return [value[:-1] + ("0" if value[-1] != "0" else "1")]
    if isinstance(value, str):
        return [e for enum in choices if value in enum for e in enum if e != value] + [value + "-changed"]
    if isinstance(value, list) and value:
        return [value[:-1]]
    return []


def nested(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """The override that sets ``key`` (its names matched against ``config``: a model's name may hold dots)."""
    from entity_tracking.job_config import key_parts

    out: Any = value
    for part in reversed(key_parts(config, key)[0]):
        out = {part: out}
    return out


def perturbations(root: Path, config: dict[str, Any], keys: list[str]) -> dict[str, dict[str, Any]]:
    """For each key, the first candidate value that gives a valid config, and the jobs whose params it changes."""
    from entity_tracking.config import ConfigError, build_config
    from entity_tracking.job_config import setting

    choices = enums(yaml.safe_load((root / "config" / "schema.yaml").read_text()))
    base = plan(root, {})
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        if key in NOT_PERTURBED:
            out[key] = {"skipped": NOT_PERTURBED[key]}
            continue
        for value in candidates(setting(config, key), choices):
            try:
                build_config(nested(config, key, value), root / "config")
            except ConfigError:
                continue
            try:
                changed = plan(root, nested(config, key, value))
            except Exception as err:  # a value the workflow cannot plan (a missing input, say)
                out[key] = {"value": value, "unplannable": f"{type(err).__name__}: {err}"[:300]}
                break
            out[key] = {
                "value": value,
                "jobs": {
                    job: sorted(k for k in params if changed[job].get(k) != params[k])
                    for job, params in sorted(base.items())
                    if job in changed and changed[job] != params
                },
            }
            break
        else:
            out[key] = {"skipped": f"no other valid value of the kind of {setting(config, key)!r}"}
    return out


def study_keys(config: dict[str, Any]) -> list[str]:
    """Every leaf key of ``config``, those of the models only for the first model of each kind."""
    from entity_tracking.job_config import leaves

    kinds: dict[tuple[str, str | None], str] = {}
    for name, spec in config["models"].items():
        kinds.setdefault((spec["source"], (spec.get("finetune") or {}).get("method")), name)
    chosen = set(kinds.values())
    keys = []
    for top, value in config.items():
        if top == "models":  # a model's name may hold dots: its keys are listed model by model
            keys += [k for name in value if name in chosen for k in leaves(value[name], f"models.{name}.")]
        else:
            keys += leaves({top: value})
    return keys


def main(argv: list[str]) -> int:
    from entity_tracking.config import build_config

    root = Path(argv[0]).resolve()
    sys.path.insert(0, str(root))
    config = build_config({}, root / "config")
    keys = argv[1:] or study_keys(config)
    print(json.dumps(perturbations(root, config, keys), indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
