"""Configuration: shared settings + one study + command-line overrides, validated by schema.

Layering (later wins, nested mappings merge key by key):

1. ``config/config.yaml``: settings shared by every study;
2. ``config/studies/<study>.yaml``: the models of a study and its overrides, picked by ``--config study=NAME``;
3. what snakemake was given on the command line (``--configfile`` / ``--config``).

In a model's ``path`` or ``recipe`` and an external circuit's ``path``, ``{repo}`` stands for this
repository's directory. The placeholder stays in the resolved config (and so in every rule's params):
``repo_path`` makes it concrete where a file is read, so a finished run moved to another directory
plans nothing.
A study name with no file in ``config/studies`` is accepted when the command line gives the models
(a complete study file given with ``--configfile``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "config"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the fix."""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``, merging nested mappings instead of replacing them."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


def build_config(overrides: dict[str, Any] | None = None, config_dir: str | Path = CONFIG_DIR) -> dict[str, Any]:
    """Merge the shared settings, the selected study and ``overrides``, then validate."""
    config_dir = Path(config_dir)
    overrides = overrides or {}
    shared = _load_yaml(config_dir / "config.yaml")
    if "profile" in overrides:
        raise ConfigError(
            "config key 'profile' is now called 'study' (config/studies/NAME.yaml). "
            "Fix: pick a study with --config study=NAME, and write study: in a config file of your own."
        )
    study = overrides.get("study", shared.get("study"))
    study_file = config_dir / "studies" / f"{study}.yaml"
    if study_file.is_file():
        own = _load_yaml(study_file)
        if own.get("study") != study:
            raise ConfigError(
                f"{study_file} names the study {own.get('study')!r}, not {study!r}. "
                f"Fix: set study: {study} in it (a study file names its own study)."
            )
        merged = deep_merge(deep_merge(shared, own), overrides)
    elif "models" in overrides:
        merged = deep_merge(shared, overrides)  # a complete study file given with --configfile
    else:
        known = sorted(p.stem for p in (config_dir / "studies").glob("*.yaml"))
        raise ConfigError(
            f"unknown study {study!r}: there is no {study_file}. Fix: use one of {known} (--config study=NAME), "
            f"add config/studies/{study}.yaml, or give a complete study file with --configfile."
        )
    validate_config(merged, config_dir / "schema.yaml")
    for name, ext in merged["circuit"]["external"].items():
        if not ext["path"].startswith(("/", "~", "{repo}")):  # relative to the repository
            ext["path"] = f"{{repo}}/{ext['path']}"
        unknown = sorted(set(ext.get("models", [])) - set(merged["models"]))
        if ext.get("found_in") is not None and ext["found_in"] not in merged["models"]:
            unknown.append(ext["found_in"])
        if name in merged["models"] or unknown:
            raise ConfigError(
                f"circuit.external.{name}: "
                + ("the name is also a model's; " if name in merged["models"] else "")
                + (f"unknown models {unknown}; " if unknown else "")
                + "Fix: give external circuits names of their own and list only models of the study "
                + f"{sorted(merged['models'])}."
            )
    cmap_pairs(merged)
    knockout_models(merged)
    small = [s for s in ("dcm_train", "dcm_val", "dcm_test") if merged["dataset"]["splits"][s] < 2]
    if small:
        raise ConfigError(
            f"config key 'dataset.splits': DCM draws each base's source from another context of its split, so "
            f"{small} need at least 2 contexts each. Fix: give them 2 or more (the paper used 1000/500/500 prompts)."
        )
    return merged


def repo_path(path: str | Path) -> str:
    """A config path with ``{repo}`` made concrete: relative to the working directory when the file is
    inside it (as a rule input, it keeps its name when the run is moved), absolute otherwise."""
    path = str(path)
    if not path.startswith("{repo}"):
        return str(Path(path).expanduser())
    full = Path(path.replace("{repo}", str(REPO), 1))
    cwd = Path.cwd().resolve()
    return str(full.relative_to(cwd)) if full.is_relative_to(cwd) else str(full)


def model_label(cfg: Mapping[str, Any], name: str) -> str:
    """A model's label in reports and figures: its ``label``, else its name (also for a name the config's
    models do not hold, such as an external circuit's)."""
    return ((cfg.get("models") or {}).get(name) or {}).get("label", name)


def finetuned_pairs(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every fine-tuned model with its base model (``base_model``), in the study's order."""
    models = cfg["models"]
    return [(n, s["base_model"]) for n, s in models.items() if s.get("role") == "finetuned" and s.get("base_model")]


def cmap_pairs(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """The (source, target) model pairs of CMAP: ``cmap.pairs``, or every fine-tuned model -> its base."""
    models = cfg["models"]
    pairs = cfg["cmap"]["pairs"]
    if pairs is None:
        return finetuned_pairs(cfg)
    for i, pair in enumerate(pairs):
        unknown = [m for m in pair if m not in models]
        if unknown:
            raise ConfigError(
                f"config key 'cmap.pairs.{i}': {unknown} not a model of this study. Fix: list [source, target] "
                f"pairs of the study's models {sorted(models)}, or set cmap.pairs to null (every fine-tuned "
                "model -> its base_model)."
            )
    out = [(s, t) for s, t in pairs]
    if len(set(out)) != len(out):
        raise ConfigError("config key 'cmap.pairs': a pair is listed twice. Fix: list each [source, target] once.")
    return out


def knockout_models(cfg: dict[str, Any]) -> list[str]:
    """The models attention knockout runs on: ``knockout.models``, or every model of the study."""
    names = cfg["knockout"]["models"]
    if names is None:
        return list(cfg["models"])
    unknown = [m for m in names if m not in cfg["models"]]
    if unknown:
        raise ConfigError(
            f"config key 'knockout.models': {unknown} not a model of this study. Fix: list models of "
            f"{sorted(cfg['models'])}, or null for all."
        )
    return list(dict.fromkeys(names))


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    hint = ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        hint = f" Fix: correct the spelling; valid keys here are {allowed}." if allowed else ""
    elif error.validator in ("enum", "const"):
        hint = f" Fix: set '{where}' to one of {error.validator_value!r}."
    elif error.validator == "type":
        hint = f" Fix: set '{where}' to a value of type {error.validator_value!r}."
    elif error.validator in ("pattern", "minimum", "maximum", "minItems", "minProperties"):
        hint = f" Fix: set '{where}' to a value with {error.validator} {error.validator_value!r}."
    elif error.validator == "required":
        hint = f" Fix: add the missing key under '{where}'."
    return f"config key '{where}': {error.message}.{hint}"


def validate_config(cfg: dict[str, Any], schema_path: str | Path) -> None:
    """Validate with ``snakemake.utils.validate`` (which also fills schema defaults in place).

    On failure, raise :class:`ConfigError` listing each offending key with the fix.
    """
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    coerce_text_values(cfg, _load_yaml(Path(schema_path)))
    try:
        validate(cfg, str(schema_path))
    except WorkflowError:
        schema = _load_yaml(Path(schema_path))
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
        leaves = _leaf_errors(errors)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in leaves)) from None
    for name, spec in cfg["models"].items():
        _check_finetune(name, spec.get("finetune"))
        base = spec.get("base_model")
        if base is not None and base not in cfg["models"]:
            raise ConfigError(
                f"config key 'models.{name}.base_model': {base!r} is not a model of this study "
                f"(models: {sorted(cfg['models'])})."
            )


LORA_KEYS = ("lora_rank", "lora_alpha")


def _check_finetune(name: str, finetune: Mapping[str, Any] | None) -> None:
    """A LoRA fine-tune names its rank and alpha; a full one names neither (it would be recorded but unused)."""
    if finetune is None:
        return
    where = f"models.{name}.finetune"
    if finetune["method"] == "lora" and (missing := [k for k in LORA_KEYS if k not in finetune]):
        raise ConfigError(
            f"config key '{where}': method lora needs {missing}. Fix: add them (e.g. lora_rank: 8, lora_alpha: 16)."
        )
    if finetune["method"] == "full" and (extra := [k for k in LORA_KEYS if k in finetune]):
        raise ConfigError(
            f"config key '{where}': {extra} apply to method lora only. Fix: remove them, or set method: lora."
        )


def coerce_text_values(cfg: dict[str, Any], schema: dict[str, Any]) -> None:
    """Give text where the schema wants a number, boolean or null its YAML meaning, in place.

    Snakemake parses a nested ``--config`` value such as ``dataset='{"seed": 7}'`` with YAML's base
    loader, which leaves every scalar inside it as text (``'7'``). Only values the schema rejects as
    text are converted, and only when the converted value is accepted; anything else is left for the
    validation error."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    tried: set[tuple[Any, ...]] = set()
    while True:
        fixes = []
        for error in _leaf_errors(sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))):
            where = tuple(error.absolute_path)
            if error.validator == "type" and isinstance(error.instance, str) and where and where not in tried:
                tried.add(where)
                try:
                    value = yaml.safe_load(error.instance)
                except yaml.YAMLError:
                    continue
                if not isinstance(value, str):
                    fixes.append((where, value))
        if not fixes:
            return
        for where, value in fixes:
            parent = cfg
            for key in where[:-1]:
                parent = parent[key]
            parent[where[-1]] = value


def _leaf_errors(errors: list[Any]) -> list[Any]:
    """The most specific errors: descend into oneOf/anyOf/allOf failures to what actually mismatched."""
    out = []
    for error in errors:
        if error.context:
            out.extend(_leaf_errors(sorted(error.context, key=lambda e: list(e.absolute_path))))
        else:
            out.append(error)
    seen: set[str] = set()
    unique = []
    for error in out:
        key = f"{list(error.absolute_path)}:{error.message}"
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique


def circuit_settings(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The ``circuit`` config section with model ``name``'s own overrides (``models.<name>.circuit``) on top,
    read lazily (a job reads only the settings it uses)."""
    from entity_tracking.job_config import Overlay

    return Overlay(cfg["circuit"], cfg["models"][name].get("circuit") or {})
