"""Circuits: four head groups, their JSON form, candidate selection, random circuits and overlap.

A circuit file is ``{group: [[layer, head], ...]}`` with the groups ``value_fetcher``,
``pos_transmitter``, ``pos_detector`` and ``struct_reader`` — the format of the original
repository's ``results/circuits/*.json``, which therefore load unchanged. A circuit found here
also has a ``selection`` entry: per group, the status of its path-patching stage (``signal``,
``no signal``, or ``not run`` once the chain stopped; :mod:`entity_tracking.selection`) and why, and
under ``settings`` the noise guard and minimality settings that selected it.

Each group acts at one position class: value fetcher and position transmitter at the last token,
position detector at the query label, structure reader at the query label's earlier occurrence in
the context. A circuit *node* is a (position class, head) pair.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entity_tracking.io import read_json, write_json

if TYPE_CHECKING:  # only for annotations: reading circuits (figures, claims) does not need torch
    import torch

Head = tuple[int, int]
Circuit = dict[str, list[Head]]
GROUPS: tuple[str, ...] = ("value_fetcher", "pos_transmitter", "pos_detector", "struct_reader")
POSITION_OF: dict[str, str] = {
    "value_fetcher": "last",
    "pos_transmitter": "last",
    "pos_detector": "query_label",
    "struct_reader": "prev_query_label",
}
POSITIONS: tuple[str, ...] = ("last", "query_label", "prev_query_label")
Node = tuple[str, Head]  # (position class, head)
SELECTION = "selection"  # the optional key of a circuit file with each group's stage status


class CircuitFileError(ValueError):
    """A circuit file is malformed or does not fit the model."""


def load_circuit(path: str | Path, layers: int | None = None, heads: int | None = None) -> Circuit:
    """Read a circuit JSON (ours or the original repository's); check heads against the model's size."""
    raw = read_json(path)
    fix = 'Fix: give every group as a list of [layer, head] pairs, e.g. {"value_fetcher": [[15, 13]], ...}.'
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != SELECTION}
    if not isinstance(raw, dict) or set(raw) != set(GROUPS):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise CircuitFileError(f"{path}: a circuit has exactly the groups {list(GROUPS)}, got {got}. {fix}")
    circuit: Circuit = {}
    for group in GROUPS:
        heads_list = raw[group]
        ok = isinstance(heads_list, list) and all(
            isinstance(h, list) and len(h) == 2 and all(type(x) is int and x >= 0 for x in h) for h in heads_list
        )
        if not ok:
            raise CircuitFileError(f"{path}: group {group!r} is not a list of [layer, head] pairs. {fix}")
        pairs = [(h[0], h[1]) for h in heads_list]
        if len(set(pairs)) != len(pairs):
            raise CircuitFileError(f"{path}: group {group!r} lists a head twice")
        bad = [p for p in pairs if (layers is not None and p[0] >= layers) or (heads is not None and p[1] >= heads)]
        if bad:
            raise CircuitFileError(
                f"{path}: heads {bad[:5]} of group {group!r} do not exist in a model with {layers} layers of "
                f"{heads} heads. Fix: evaluate this circuit only on models of the size it was found in."
            )
        circuit[group] = pairs
    return circuit


def save_circuit(
    path: str | Path,
    circuit: Circuit,
    selection: dict[str, dict[str, str]] | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Write a circuit; ``selection``: per group, ``{"status": ..., "reason": ...}`` of its stage, and the
    ``settings`` that selected it."""
    out: dict[str, Any] = {g: [list(h) for h in circuit[g]] for g in GROUPS}
    if selection is not None:
        out[SELECTION] = {g: selection[g] for g in GROUPS} | ({"settings": settings} if settings else {})
    write_json(path, out)


GIVEN = "given"  # the status of every group of a circuit without a selection entry (a published circuit)
STATUSES: tuple[str, ...] = ("signal", "no signal", "not run", GIVEN)


def group_status(path: str | Path) -> dict[str, dict[str, str]]:
    """Per group, ``{"status", "reason"}`` of the stage that selected it (``given`` for a circuit file
    without a selection entry)."""
    raw = read_json(path)
    entry = raw.get(SELECTION) if isinstance(raw, dict) else None
    if entry is None:
        return {g: {"status": GIVEN, "reason": "a given circuit"} for g in GROUPS}
    ok = isinstance(entry, dict) and all(
        isinstance(entry.get(g), dict) and entry[g].get("status") in STATUSES for g in GROUPS
    )
    if not ok:
        raise CircuitFileError(
            f"{path}: its {SELECTION!r} entry must give every group a status in {list(STATUSES)}. "
            "Fix: a circuit made by rule minimality: delete it and rerun snakemake; a circuit of your own: remove "
            f"the {SELECTION!r} entry."
        )
    return {g: {"status": entry[g]["status"], "reason": str(entry[g].get("reason", ""))} for g in GROUPS}


def circuit_nodes(circuit: Circuit) -> list[Node]:
    """The circuit's (position class, head) nodes, in group order, without repeats."""
    nodes: list[Node] = []
    for group in GROUPS:
        for head in circuit[group]:
            node = (POSITION_OF[group], head)
            if node not in nodes:
                nodes.append(node)
    return nodes


def keep_sets(circuit: Circuit, removed: Iterable[Node] = ()) -> dict[str, set[Head]]:
    """Heads kept at each position class: the circuit's nodes minus ``removed``."""
    gone = set(removed)
    keep: dict[str, set[Head]] = {p: set() for p in POSITIONS}
    for pos, head in circuit_nodes(circuit):
        if (pos, head) not in gone:
            keep[pos].add(head)
    return keep


def full_model_keep(layers: int, heads: int, removed: Iterable[Node] = ()) -> dict[str, set[Head]]:
    """Every head at every position class, minus ``removed`` (the completeness test's M \\ K)."""
    gone = set(removed)
    every = [(layer, head) for layer in range(layers) for head in range(heads)]
    return {p: {h for h in every if (p, h) not in gone} for p in POSITIONS}


def top_heads(score: torch.Tensor, k: int) -> list[Head]:
    """The ``k`` most negative heads of a ``[layers, heads]`` score, ties broken by (layer, head)."""
    flat = score.flatten().tolist()
    order = sorted(range(len(flat)), key=lambda i: (flat[i], i))[:k]
    n_heads = score.shape[1]
    return [(i // n_heads, i % n_heads) for i in order]


def random_circuit(rng: random.Random, sizes: dict[str, int], layers: int, heads: int) -> Circuit:
    """A circuit with the given group sizes, heads drawn without replacement within each position class."""
    every = [(layer, head) for layer in range(layers) for head in range(heads)]
    out: Circuit = {}
    for pos in POSITIONS:
        groups = [g for g in GROUPS if POSITION_OF[g] == pos]
        need = sum(sizes[g] for g in groups)
        if need > len(every):
            raise ValueError(f"cannot draw {need} distinct heads at one position from a model with {len(every)}")
        drawn = rng.sample(every, need)
        for g in groups:
            out[g], drawn = drawn[: sizes[g]], drawn[sizes[g] :]
    return out


def overlap(a: Circuit, b: Circuit) -> dict[str, dict[str, Any]]:
    """Per group and overall: intersection size, precision (|a ∩ b| / |a|) and recall (|a ∩ b| / |b|)."""
    out: dict[str, dict[str, Any]] = {}
    rows = [(g, {(g, h) for h in a[g]}, {(g, h) for h in b[g]}) for g in GROUPS]
    rows.append(("all", set().union(*(r[1] for r in rows)), set().union(*(r[2] for r in rows))))
    for name, sa, sb in rows:
        inter = len(sa & sb)
        out[name] = {
            "size_a": len(sa),
            "size_b": len(sb),
            "intersection": inter,
            "precision": inter / len(sa) if sa else None,
            "recall": inter / len(sb) if sb else None,
        }
    return out
