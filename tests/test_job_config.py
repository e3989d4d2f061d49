"""Jobs receive exactly the settings they read: ``job_config.pick`` in a rule's params, the job's view of the
config while it runs, and, on the default run, a perturbation of every config key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from entity_tracking.config import REPO, build_config, circuit_settings
from entity_tracking.job_config import (
    ConfigKeyError,
    ConfigView,
    Overlay,
    job_view,
    leaves,
    materialize,
    pick,
    setting,
)
from entity_tracking.model_specs import loading_keys
from entity_tracking.provenance import job_id, read_records
from entity_tracking.runtime import job_context
from tests.planned_params import NOT_PERTURBED, study_keys
from tests.test_runtime import OUT, RECORD, fake_job

CONFIG = build_config({}, REPO / "config")


def test_pick_holds_each_named_setting_and_nothing_else():
    part = pick(CONFIG, "knockout.seed", "evaluation", "models.organism-base.label?", "models.organism-base.nope?")
    assert part == {
        "knockout": {"seed": 5},
        "evaluation": CONFIG["evaluation"],
        "models": {"organism-base": {"label": "Base organism"}},
    }
    with pytest.raises(KeyError, match=r"knockout\.sede"):
        pick(CONFIG, "knockout.sede")
    with pytest.raises(ValueError, match="runtime setting"):
        pick(CONFIG, "device")


def test_loading_a_full_finetune_reads_its_checkpoint_settings_not_its_recipe():
    # its corpus and learning rate made the checkpoint (an input), so they do not rerun what loads it
    assert loading_keys(CONFIG, "organism-chat") == [
        "models.organism-chat.dtype",
        "models.organism-chat.finetune.method",
        "models.organism-chat.source",
        "study",
        "dataset.objects_file",
    ]
    lora = loading_keys(CONFIG, "organism-arith-lora")  # a LoRA adapter is merged into its base's weights
    assert {"models.organism-base.sha256", "models.organism-arith-lora.base_model"} <= set(lora)
    assert not any(".finetune.lr" in k or ".label" in k for k in lora)


def test_a_view_refuses_what_was_not_picked_and_records_what_was_read():
    view = job_view(pick(CONFIG, "knockout.seed", "evaluation"), CONFIG, "knockout")
    assert view["knockout"]["seed"] == 5 and view["device"] == CONFIG["device"]  # runtime keys are readable
    assert view["evaluation"].get("no such key", "default") == "default"
    with pytest.raises(ConfigKeyError, match=r"rule knockout read the config key 'knockout.batch_size'.*pick"):
        view["knockout"]["batch_size"]
    with pytest.raises(ConfigKeyError):  # .get does not hide a setting the params do not carry
        view["knockout"].get("conditions")
    split = view["evaluation"]["split"]
    assert split == "eval" and view.read == {"knockout.seed", "device", "evaluation.split"}
    assert materialize(view["evaluation"]) == CONFIG["evaluation"]
    assert view.read >= {"evaluation.batch_size", "evaluation.confidence"}
    assert json.loads(json.dumps(CONFIG["evaluation"])) == json.loads(json.dumps(materialize(view["evaluation"])))


def test_an_overlay_reads_each_setting_from_the_layer_that_gives_it():
    view = ConfigView(
        {"circuit": {"a": 1, "b": {"x": 1, "y": 2}}, "models": {"m": {"circuit": {"b": {"y": 3}}}}},
        {"circuit": {"a": 1, "b": {"x": 1, "y": 2}}, "models": {"m": {"circuit": {"b": {"y": 3}}}}},
        "r",
    )
    settings = circuit_settings(view, "m")
    assert isinstance(settings, Overlay) and materialize(settings) == {"a": 1, "b": {"x": 1, "y": 3}}
    assert "circuit.b.y" not in view.read  # overridden, never read
    assert {"circuit.a", "circuit.b.x", "models.m.circuit.b.y"} <= view.read


def test_a_job_that_reads_a_setting_its_params_do_not_carry_fails_and_is_not_recorded(workdir: Path):
    job = fake_job()
    job.config = {"study": "mini", "evaluation": {"confidence": 0.95, "batch_size": 8}}
    job.params["config"] = {"evaluation": {"batch_size": 8}}
    with pytest.raises(ConfigKeyError, match=r"evaluation\.confidence"), job_context(job):
        job.config["evaluation"]["confidence"]
    assert not RECORD.exists() and job.config["evaluation"]["confidence"] == 0.95  # the config is given back


def test_a_job_record_lists_the_settings_the_job_read(workdir: Path):
    job = fake_job()
    job.config = {"study": "mini", "threads": 4, "k": {"m.1": {"seed": 3}, "n": 2}}
    job.params["config"] = {"k": {"m.1": {"seed": 3}, "n": 2}}
    with job_context(job, seed="k.m.1.seed"):  # a seed by its key; a name may hold dots
        assert job.config["threads"] == 4
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps({"n": job.config["k"]["n"]}))
    record = json.loads(RECORD.read_text())
    assert (record["seed"], record["config_read"]) == (3, ["k.m.1.seed", "k.n"])  # runtime keys are not listed


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_runtime) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_job_of_the_default_run_read_exactly_the_settings_its_params_carry(default_run: Path):
    records = read_records(default_run / "results" / "default")
    viewed = [r for r in records if "config_read" in r]
    assert len(viewed) > 100  # every job but the figures' (they take their settings as arguments)
    for rec in viewed:
        assert rec["config_read"] == declared(rec["params"].get("config")), job_id(rec["rule"], rec["wildcards"])


def declared(part: dict | None) -> list[str]:
    """The settings a rule's ``params: config=pick(...)`` carries: its leaves that the config has (an optional
    key the config lacks leaves only its empty parents, which let the job look for it)."""

    def has(key: str) -> bool:
        try:
            value = setting(CONFIG, key)
        except KeyError:
            return False
        return not (isinstance(value, dict) and value)

    return sorted(k for k in leaves(part or {}) if has(k))


def planned_changes(root: Path, keys: list[str], workers: int = 2) -> dict[str, dict]:
    """``tests.planned_params`` on ``root`` for ``keys``, split over ``workers`` processes."""

    def run(chunk: list[str]) -> dict[str, dict]:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "tests.planned_params", str(root), *chunk]
        res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout)

    chunks = [keys[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return {k: v for part in pool.map(run, chunks) for k, v in part.items()}


def test_changing_a_config_key_reruns_exactly_the_jobs_that_read_it(default_run: Path):
    """Each key of the config (the models' for one model of each kind) changed alone: the jobs whose params
    Snakemake finds changed are exactly those whose record shows they read it (a figure: those whose rule
    declares it, and then its arguments change too). Keys only the planning reads (which split a rule
    takes, say) change no job's params: they change its input files instead."""
    records = {job_id(r["rule"], r["wildcards"]): r for r in read_records(default_run / "results" / "default")}
    keys = study_keys(CONFIG)
    changes = planned_changes(default_run, keys)
    problems = []
    for key in keys:
        change = changes[key]
        if "skipped" in change:
            continue
        assert "unplannable" not in change, (key, change)
        planned = set(change["jobs"])
        readers = set()
        for job, rec in records.items():
            if key in rec.get("config_read", declared(rec["params"].get("config"))):
                readers.add(job)
                if "config_read" not in rec and "kwargs" not in change["jobs"].get(job, []):
                    problems.append(f"{job} declares {key} but its arguments do not use it")
        if planned != readers:
            problems.append(f"{key}: planned {sorted(planned - readers)}, not planned {sorted(readers - planned)}")
    assert not problems, "\n".join(problems)
    skipped = {k for k in keys if "skipped" in changes[k]}
    assert skipped == {
        *NOT_PERTURBED,
        # no other valid value: unset, or an only choice
        "dataset.objects_file",
        "circuit.external",
        "cmap.pairs",
        "knockout.models",
        "circuit.path_patching.split",
        # what a model is: another source or base is another kind of model (its keys differ)
        *(f"models.{m}.{k}" for m in ("organism-base", "organism-chat", "organism-arith-lora") for k in ("source",)),
        *(f"models.{m}.base_model" for m in ("organism-chat", "organism-arith-lora")),
        # and a fine-tune's method: LoRA's rank and alpha are required with one and refused with the other
        *(f"models.{m}.finetune.method" for m in ("organism-chat", "organism-arith-lora")),
    }, sorted(skipped)


# Modules whose functions may take the config: those that plan the DAG from it, those that record it in job
# records and the manifest, and the benchmark tool (which builds a config for the model it times).
CONFIG_READERS = {"config", "job_config", "layout", "model_specs", "provenance", "integrity", "benchmark"}


def test_library_functions_take_explicit_arguments_not_the_config():
    """Outside the planning and recording modules no function has a ``cfg`` or ``config`` parameter; a settings
    object may be built from one by its ``of`` class method (``CmapSettings.of``, ``Study.of``)."""
    import ast

    offenders = []
    for path in sorted((REPO / "entity_tracking").rglob("*.py")):
        if path.stem in CONFIG_READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name != "of":
                args = node.args
                names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
                if names & {"cfg", "config"}:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert offenders == []
    assert len(list((REPO / "entity_tracking").rglob("*.py"))) > 30  # the walk saw the package
