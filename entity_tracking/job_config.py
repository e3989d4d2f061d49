"""The part of the config a job reads, carried in its rule's ``params`` and enforced while it runs.

A rule declares what its job reads with :func:`pick` (``params: config=pick(config, "knockout.seed", ...)``),
so Snakemake plans a rerun exactly when one of those settings changes and the job record shows them.
While the job runs, ``runtime.job_context`` puts a :class:`ConfigView` of that part in place of the
whole config: reading a setting the params do not carry is an error that names the rule and the key,
and every setting read is recorded, so a test checks that each job reads all it declares and nothing else.

The settings in :data:`RUNTIME_KEYS` say where and how a job runs, not what it computes; jobs read them
from the run's config and a change of them plans no rerun. Torch-free: the Snakefile imports it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# Read by jobs from the run's config and never part of their params: the device a job runs on (its record
# names it), where downloaded weights are cached, and threads (the rule's `threads:`).
RUNTIME_KEYS = ("device", "model_cache", "threads")


class Overlay(Mapping):
    """``base`` with ``override``'s settings on top, nested mappings merged, read lazily: reading a setting
    reads it from the one that gives it (so a job's view records only what the job uses)."""

    def __init__(self, base: Mapping[str, Any], override: Mapping[str, Any]):
        self._base, self._override = base, override

    def __getitem__(self, key: str) -> Any:
        if key not in self._override:
            return self._base[key]
        value = self._override[key]
        if isinstance(value, Mapping) and isinstance(self._base.get(key), Mapping):
            return Overlay(self._base[key], value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._base, *self._override]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._base, *self._override]))


class ConfigKeyError(KeyError):
    """A job read a setting that its rule's params do not carry."""

    def __str__(self) -> str:
        return str(self.args[0])


def key_parts(config: Mapping[str, Any], key: str) -> tuple[list[str], bool]:
    """The names along a dotted key, matched against ``config`` (a model's name may hold dots: in
    ``models.qwen2.5-coder.role`` the longest name the config has wins), and whether the config has it all;
    the parts after the first missing one stay as one name."""
    pieces, parts, node = key.split("."), [], config
    while pieces:
        for n in range(len(pieces), 0, -1):
            name = ".".join(pieces[:n])
            if isinstance(node, Mapping) and name in node:
                parts.append(name)
                node, pieces = node[name], pieces[n:]
                break
        else:
            return [*parts, ".".join(pieces)], False
    return parts, True


def setting(config: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key (see :func:`key_parts`); ``KeyError`` when the config does not have it."""
    parts, found = key_parts(config, key)
    if not found:
        raise KeyError(f"config key {key!r} does not exist")
    node: Any = config
    for part in parts:
        node = node[part]
    return node


def pick(config: Mapping[str, Any], *keys: str, models: Iterable[str] = ()) -> dict[str, Any]:
    """The nested part of ``config`` holding each dotted key and, for each of ``models``, the settings that
    loading it reads (``model_specs.loading_keys``). A key ending in ``?`` is optional: when the config does
    not have it, only its parents are there (empty), so the job may look for it and find it absent."""
    from entity_tracking.model_specs import loading_keys  # it imports this module

    out: dict[str, Any] = {}
    for key in [*keys, *(k for name in models for k in loading_keys(config, name))]:
        optional, key = key.endswith("?"), key.rstrip("?")
        if key.split(".")[0] in RUNTIME_KEYS:
            raise ValueError(f"{key!r} is a runtime setting (RUNTIME_KEYS): jobs read it, params never carry it")
        parts, found = key_parts(config, key)
        if not found and not optional:
            raise KeyError(f"config key {key!r} does not exist (no {parts[-1]!r} under {'.'.join(parts[:-1])!r})")
        node, value = out, config
        for part in parts[:-1]:
            node, value = node.setdefault(part, {}), value[part]
        if found:  # else the job may still look for it: its parents are declared
            node[parts[-1]] = copy.deepcopy(value[parts[-1]])
    return out


def leaves(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of ``config`` whose value is not a non-empty mapping."""
    out = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += leaves(value, path + ".")
        else:
            out.append(path)
    return out


def materialize(value: Any) -> Any:
    """Plain dicts for the mappings in ``value`` (a job's view of its settings): every setting below is read."""
    if isinstance(value, Mapping):
        return {k: materialize(value[k]) for k in value}
    return value


class ConfigView(Mapping):
    """A read-only view of the run's config (``data``) that lets a job read only the settings in ``allowed``
    (the nested part its params carry, and the runtime keys): any other setting is refused with
    :class:`ConfigKeyError`, and every setting read is recorded in :attr:`read` (dotted keys of leaves).
    A key the config does not have is a plain ``KeyError`` (so ``.get`` gives its default)."""

    def __init__(
        self,
        data: Mapping[str, Any],
        allowed: Mapping[str, Any],
        rule: str,
        prefix: str = "",
        read: set[str] | None = None,
    ):
        self._data, self._allowed, self._rule, self._prefix = data, allowed, rule, prefix
        self.read: set[str] = set() if read is None else read

    def __getitem__(self, key: str) -> Any:
        path = f"{self._prefix}{key}"
        value = self._data[key]  # KeyError: the config has no such key
        if key not in self._allowed:
            raise ConfigKeyError(
                f"rule {self._rule} read the config key {path!r}, which its params do not carry. Fix: add it to "
                f"the rule's `params: config=pick(config, ...)` (rules/*.smk), so that changing it reruns the job"
            )
        if isinstance(value, Mapping) and value:
            return ConfigView(value, self._allowed[key], self._rule, path + ".", self.read)
        self.read.add(path)
        return copy.deepcopy(value)  # a job cannot change the settings it was given

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except ConfigKeyError:
            raise
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return f"ConfigView({self._prefix or 'config'}: {sorted(self._data)})"


def job_view(declared: Mapping[str, Any] | None, config: Mapping[str, Any], rule: str) -> ConfigView:
    """What a job may read: the part of the run's ``config`` its params carry (``declared``) and the runtime keys."""
    allowed = {**(declared or {}), **{k: config[k] for k in RUNTIME_KEYS if k in config}}
    return ConfigView(config, allowed, rule)
