"""Configuration: shared study settings + one profile + command-line overrides, validated by schema.

Layering (later wins, nested mappings merge key by key):

1. ``config/config.yaml``: study settings shared by every profile;
2. ``config/profiles/<profile>.yaml``: the models of a profile and its overrides;
3. what snakemake was given on the command line (``--configfile`` / ``--config``).

In a model's ``path`` or ``recipe``, ``{repo}`` stands for this repository's directory, so shipped
checkpoints are found whatever the working directory.

``--configfile config/profiles/paper.yaml`` and ``--config profile=paper`` therefore select the same
profile, and a custom profile file outside ``config/profiles`` works as well.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


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
    """Merge the shared settings, the selected profile and ``overrides``, then validate."""
    config_dir = Path(config_dir)
    overrides = overrides or {}
    shared = _load_yaml(config_dir / "config.yaml")
    profile = overrides.get("profile", shared.get("profile"))
    profile_file = config_dir / "profiles" / f"{profile}.yaml"
    if profile_file.is_file():
        merged = deep_merge(deep_merge(shared, _load_yaml(profile_file)), overrides)
    elif "models" in overrides:
        merged = deep_merge(shared, overrides)  # a custom profile file given with --configfile
    else:
        known = sorted(p.stem for p in (config_dir / "profiles").glob("*.yaml"))
        raise ConfigError(
            f"unknown profile {profile!r}: there is no {profile_file}. Fix: use one of {known} "
            "(--config profile=NAME) or give a complete profile file with --configfile."
        )
    validate_config(merged, config_dir / "schema.yaml")
    repo = str(config_dir.resolve().parent)
    for spec in merged["models"].values():  # "{repo}" in a path = this repository, wherever snakemake runs
        for key in ("path", "recipe"):
            if key in spec:
                spec[key] = spec[key].replace("{repo}", repo)
    for name, ext in merged["circuit"]["external"].items():
        path = Path(ext["path"].replace("{repo}", repo))
        ext["path"] = str(path if path.is_absolute() else Path(repo) / path)
        unknown = sorted(set(ext.get("models", [])) - set(merged["models"]))
        if ext.get("found_in") is not None and ext["found_in"] not in merged["models"]:
            unknown.append(ext["found_in"])
        if name in merged["models"] or unknown:
            raise ConfigError(
                f"circuit.external.{name}: "
                + ("the name is also a model's; " if name in merged["models"] else "")
                + (f"unknown models {unknown}; " if unknown else "")
                + "Fix: give external circuits names of their own and list only models of the profile "
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


def cmap_pairs(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """The (source, target) model pairs of CMAP: ``cmap.pairs``, or every fine-tuned model -> its base."""
    models = cfg["models"]
    pairs = cfg["cmap"]["pairs"]
    if pairs is None:
        return [(n, s["base_model"]) for n, s in models.items() if s["role"] == "finetuned" and s.get("base_model")]
    for i, pair in enumerate(pairs):
        unknown = [m for m in pair if m not in models]
        if unknown:
            raise ConfigError(
                f"config key 'cmap.pairs.{i}': {unknown} not a model of this profile. Fix: list [source, target] "
                f"pairs of the profile's models {sorted(models)}, or set cmap.pairs to null (every fine-tuned "
                "model -> its base_model)."
            )
    out = [(s, t) for s, t in pairs]
    if len(set(out)) != len(out):
        raise ConfigError("config key 'cmap.pairs': a pair is listed twice. Fix: list each [source, target] once.")
    return out


def knockout_models(cfg: dict[str, Any]) -> list[str]:
    """The models attention knockout runs on: ``knockout.models``, or every model of the profile."""
    names = cfg["knockout"]["models"]
    if names is None:
        return list(cfg["models"])
    unknown = [m for m in names if m not in cfg["models"]]
    if unknown:
        raise ConfigError(
            f"config key 'knockout.models': {unknown} not a model of this profile. Fix: list models of "
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

    try:
        validate(cfg, str(schema_path))
    except WorkflowError:
        schema = _load_yaml(Path(schema_path))
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
        leaves = _leaf_errors(errors)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in leaves)) from None
    for name, spec in cfg["models"].items():
        base = spec.get("base_model")
        if base is not None and base not in cfg["models"]:
            raise ConfigError(
                f"config key 'models.{name}.base_model': {base!r} is not a model of this profile "
                f"(models: {sorted(cfg['models'])})."
            )


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
