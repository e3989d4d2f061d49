"""Model specs as the workflow plans them: where the DAG puts the checkpoints it makes, the spec a model is
loaded from, the files loading reads, and the settings loading reads (a job's params carry them).
Torch-free: the Snakefile imports it to plan the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entity_tracking.config import repo_path
from entity_tracking.job_config import ConfigView, materialize
from entity_tracking.layout import result, results_dir

# Keys of a model spec that say what the model is in the study or how the DAG makes it, not how to load it.
NOT_LOADING = ("label", "role", "base_model", "finetune", "recipe", "train_mem_mb", "circuit")


def checkpoint_dir(cfg: dict[str, Any], name: str) -> Path:
    """Where the DAG writes a checkpoint it makes: fine-tunes, retrained bases, converted GGUF models."""
    kind = {"finetune": "finetuned", "gguf": "converted"}.get(cfg["models"][name]["source"], "pretrained")
    return Path(result(results_dir(cfg["study"]), "checkpoint", kind=kind, model=name))


def retrained(cfg: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether the DAG retrains this model from its recipe (``retrain_base``) instead of loading its checkpoint;
    the recipe's path itself is not read."""
    return "recipe" in spec and bool(cfg.get("retrain_base"))


def effective_spec(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec actually loaded: fine-tunes, retrained bases and GGUF models point at the DAG's checkpoints
    (a GGUF model is converted once, by rule ``convert_model``, into a plain checkpoint).

    A LoRA fine-tune is its base's spec plus the adapter, merged at load.
    """
    spec = cfg["models"][name]
    common = {"dtype": spec.get("dtype", "float32")}
    if spec["source"] == "gguf":
        keep = {k: materialize(spec[k]) for k in ("tokenizer", "adapter", "trust_remote_code") if k in spec}
        return {"source": "local", "path": str(checkpoint_dir(cfg, name)), **common, **keep}
    if spec["source"] == "finetune":
        ckpt = str(checkpoint_dir(cfg, name))
        if spec["finetune"]["method"] == "lora":
            return {**effective_spec(cfg, spec["base_model"]), **common, "adapter": {"path": ckpt}}
        return {"source": "local", "path": ckpt, **common}
    loading = loader_spec(cfg, name)
    if retrained(cfg, spec):
        return {k: v for k, v in loading.items() if k != "sha256"} | {"path": str(checkpoint_dir(cfg, name))}
    return loading


def trained_inputs(cfg: dict[str, Any], name: str) -> list[str]:
    """The checkpoint directories the DAG must make before model ``name`` can be loaded."""
    spec = cfg["models"][name]
    if spec["source"] == "finetune":
        base = trained_inputs(cfg, spec["base_model"]) if spec["finetune"]["method"] == "lora" else []
        return [*base, str(checkpoint_dir(cfg, name))]
    if spec["source"] == "gguf" or retrained(cfg, spec):
        return [str(checkpoint_dir(cfg, name))]
    return []


def model_inputs(cfg: dict[str, Any], name: str) -> list[str]:
    """Every file that loading model ``name`` for the study reads and the workflow or the user provides:
    the DAG's checkpoints, local model, adapter and tokenizer directories, and the objects file (a rule
    that loads the model declares them as inputs, so a change reruns it and its record hashes them)."""
    spec = effective_spec(cfg, name)
    files = trained_inputs(cfg, name)
    for ref in (spec if spec["source"] == "local" else {}, spec.get("adapter") or {}, spec.get("tokenizer") or {}):
        if "path" in ref:
            files.append(repo_path(ref["path"]))
    if cfg["dataset"].get("objects_file"):
        files.append(repo_path(cfg["dataset"]["objects_file"]))
    return list(dict.fromkeys(files))


def finetune_base_dir(cfg: dict[str, Any], name: str) -> str:
    """The checkpoint directory a fine-tune starts from: its base model's local (or retrained) checkpoint."""
    base = cfg["models"][name]["base_model"]
    spec = effective_spec(cfg, base)
    if spec["source"] != "local" or spec.get("adapter"):
        raise ValueError(
            f"model {name!r} fine-tunes {base!r}, which is not a plain local checkpoint (source {spec['source']!r}). "
            "Fix: fine-tune from a local checkpoint or from a full (not LoRA) fine-tune."
        )
    return repo_path(spec["path"])


def loader_keys(cfg: dict[str, Any], name: str) -> list[str]:
    """The keys of model ``name``'s own spec that loading it from that spec reads (all but ``NOT_LOADING``)."""
    return [k for k in cfg["models"][name] if k not in NOT_LOADING]


def loader_spec(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """Model ``name``'s own spec as loading it reads it: the :func:`loader_keys`, as plain values."""
    return {k: materialize(cfg["models"][name][k]) for k in loader_keys(cfg, name)}


def spec_keys(cfg: dict[str, Any], name: str) -> list[str]:
    """The settings that :func:`effective_spec` reads for model ``name``, found by running it on a recording
    view of ``cfg``: a job that calls it declares them (``job_config.pick``)."""
    view = ConfigView(cfg, cfg, "planning")
    effective_spec(view, name)
    return sorted(view.read)


def loading_keys(cfg: dict[str, Any], name: str) -> list[str]:
    """The settings that :func:`model_source` reads for model ``name`` (besides the runtime keys): its
    effective spec's and the objects file."""
    return [*spec_keys(cfg, name), "dataset.objects_file"]


@dataclass(frozen=True)
class ModelSource:
    """Everything loading one model of a study reads (``models.load_source``): the spec actually loaded, the
    device, the cache of downloaded weights, and the objects file whose words its tokenizer is checked on."""

    name: str
    spec: dict[str, Any]
    device: str
    cache_dir: str
    objects_file: str | None = None


def model_source(cfg: dict[str, Any], name: str, root: str | Path | None = None) -> ModelSource:
    """How model ``name`` of the validated config is loaded.

    ``root``: the workflow directory that the config's relative paths (the DAG's checkpoints, the model
    cache) are under, when it is not the current directory (the benchmark's ``--root``)."""
    if name not in cfg["models"]:
        raise KeyError(f"model {name!r} is not in study {cfg['study']!r} (models: {sorted(cfg['models'])})")
    spec, cache_dir = effective_spec(cfg, name), cfg["model_cache"]
    if root is not None:

        def under_root(path: str) -> str:  # an absolute path stays as it is
            return str(Path(root) / repo_path(path))

        spec = dict(spec)
        if "path" in spec:
            spec["path"] = under_root(spec["path"])
        if spec.get("adapter", {}).get("path"):
            spec["adapter"] = {**spec["adapter"], "path": under_root(spec["adapter"]["path"])}
        cache_dir = under_root(cache_dir)
    objects_file = cfg["dataset"].get("objects_file")
    return ModelSource(name, spec, cfg["device"], cache_dir, objects_file and repo_path(objects_file))
