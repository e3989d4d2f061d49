"""Minimality: prune candidate heads that do not matter given the rest of the circuit.

For each group G (order: structure reader, position transmitter, position detector, value
fetcher), always starting from the full candidate circuit C:

1. ``acc(v, u)``: accuracy of C without heads v and u of G, for every pair (``acc(v, v)``: v alone).
   Heads are compared by value (the original's bugs here: docs/differences.md, "Path patching,
   selection and minimality").
2. For v, rank every other u by ``acc(u, u) - acc(v, u)`` (how much v adds to u's removal) and take
   as K the first ``ceil(percentage * |G|)``, stopping at the first gain <= 0.
3. ``before = acc(C \\ K)``, ``after = acc(C \\ (K + v))``, ``score = before / after - 1``. When
   ``after == 0`` the score is infinite if ``before > 0``. Accuracies are never rounded.
4. v is kept iff ``score >= threshold`` (the paper's rule) **and** removing it lowers accuracy
   significantly on the same prompts: McNemar's exact one-sided test of ``C \\ K`` against
   ``C \\ (K + v)`` (:func:`entity_tracking.stats.paired_test`) has ``p < alpha`` (``alpha = 1``
   turns the test off: the paper's rule alone). Without the test a head could be kept for a drop
   of one or two prompts. Each head's effect, discordant counts and p-value are recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from entity_tracking.circuits import GROUPS, POSITION_OF, Circuit, Head, Node
from entity_tracking.stats import paired_test

if TYPE_CHECKING:
    from entity_tracking.ablation import AblationRuns
    from entity_tracking.model_specs import ModelSource

ORDER: tuple[str, ...] = ("struct_reader", "pos_transmitter", "pos_detector", "value_fetcher")


def significance(before: float, after: float) -> float:
    """``before / after - 1``; ``inf`` when only ``after`` is 0, ``0`` when both are."""
    if after > 0:
        return before / after - 1
    return math.inf if before > 0 else 0.0


def minimality(
    candidates: Circuit,
    outcomes: Callable[[frozenset[Node]], torch.Tensor],
    percentage: float,
    threshold: float,
    alpha: float = 0.05,
    desc: str = "minimality",
) -> tuple[Circuit, dict[str, Any]]:
    """The minimal circuit and a JSON-ready record of every pair accuracy and every head's test.

    ``outcomes(removed)``: per prompt, whether the candidate circuit without the nodes ``removed`` is right
    (a boolean tensor ``[N]``, the same prompts every time).
    """
    cache: dict[frozenset[Node], torch.Tensor] = {}

    def outcomes_of(nodes: set[Node]) -> torch.Tensor:
        key = frozenset(nodes)
        if key not in cache:
            cache[key] = outcomes(key).bool().cpu()
        return cache[key]

    def acc_of(nodes: set[Node]) -> float:
        hits = outcomes_of(nodes)
        return float(hits.double().mean()) if len(hits) else float("nan")

    final: Circuit = {g: [] for g in GROUPS}
    report: dict[str, Any] = {
        "percentage": percentage,
        "threshold": threshold,
        "alpha": alpha,
        "test": "McNemar exact, one-sided: C \\ K more accurate than C \\ (K + v) on the same prompts",
        "full": acc_of(set()),
        "groups": {},
    }
    for group in ORDER:
        heads = candidates[group]
        pos = POSITION_OF[group]

        def node(h: Head, pos: str = pos) -> Node:
            return (pos, h)

        pair: dict[tuple[Head, Head], float] = {}
        total = len(heads) * (len(heads) + 1) // 2
        with tqdm(total=total, desc=f"{desc} {group} pairs", unit="eval", leave=False, disable=None) as bar:
            for i, v in enumerate(heads):
                for u in heads[i:]:
                    pair[(v, u)] = pair[(u, v)] = acc_of({node(v), node(u)})
                    bar.update()
        size_k = math.ceil(percentage * len(heads))
        rows = []
        for v in heads:
            gains = sorted(
                ((u, pair[(u, u)] - pair[(v, u)]) for u in heads if u != v), key=lambda item: -item[1]
            )  # stable: ties keep the candidate order
            k_set: list[Head] = []
            for u, gain in gains[:size_k]:
                if gain <= 0:
                    break
                k_set.append(u)
            removed_k = {node(u) for u in k_set}
            before, after = acc_of(removed_k), acc_of(removed_k | {node(v)})
            score = significance(before, after)
            test = paired_test(outcomes_of(removed_k).numpy(), outcomes_of(removed_k | {node(v)}).numpy())
            kept = score >= threshold and (alpha >= 1 or test["p_value"] < alpha)
            rows.append(
                {
                    "head": list(v),
                    "K": [list(u) for u in k_set],
                    "before": before,
                    "after": after,
                    "score": score if math.isfinite(score) else None,
                    "essential": math.isinf(score),
                    "effect": before - after,
                    "lost": test["a_only"],  # prompts right without K, wrong without K and v
                    "gained": test["b_only"],
                    "p_value": test["p_value"],
                    "kept": kept,
                }
            )
            if kept:
                final[group].append(v)
        report["groups"][group] = {
            "candidates": [list(h) for h in heads],
            "k_size": size_k,
            "pairs": [[list(v), list(u), pair[(v, u)]] for i, v in enumerate(heads) for u in heads[i:]],
            "significance": rows,
            "kept": [list(h) for h in final[group]],
        }
    report["evaluations"] = len(cache)
    return final, report


def run_minimality(
    source: ModelSource,
    scores_file: str | Path,
    summary_file: str | Path,
    runs: AblationRuns,
    out_circuit: str | Path,
    out_report: str | Path,
    metric: str,
    selection: dict[str, Any],
    candidates: dict[str, int],
    opts: dict[str, Any],
) -> Circuit:
    """Rule minimality: candidates selected beyond noise (``selection``: the noise guard's settings) from the
    per-example path-patching scores of ``metric``, up to ``candidates`` heads a group, then pruned on the
    minimality split (``opts``: percentage, threshold, alpha); the circuit file records each group's stage
    status."""
    from entity_tracking.ablation import load_ablator
    from entity_tracking.circuits import keep_sets, save_circuit
    from entity_tracking.io import sha256_file, write_json
    from entity_tracking.selection import assign_groups, chain_tests, load_stages, stage_status

    name = source.name
    tests = chain_tests(*load_stages(scores_file, summary_file, metric, selection), selection)
    cands = assign_groups(tests, candidates)
    status = {g: dict(zip(("status", "reason"), stage_status(tests, g), strict=True)) for g in GROUPS}
    _, ablator = load_ablator(source, runs)

    def outcomes(removed: frozenset[Node]) -> torch.Tensor:
        return ablator.outcomes(keep_sets(cands, removed))

    circuit, report = minimality(cands, outcomes, opts["percentage"], opts["threshold"], opts["alpha"], desc=name)
    guard = {"test": "one-sided one-sample t-test per head (mean score < 0)", "metric": metric, **selection}
    save_circuit(out_circuit, circuit, status, {"selection": guard, "minimality": opts})
    report = {
        "model": name,
        "records": len(ablator.enc),
        "data_sha256": sha256_file(runs.data_file),
        "scores_sha256": sha256_file(scores_file),
        "metric": metric,
        "selection": selection,
        "stages": status,
        "candidates": {g: [list(h) for h in cands[g]] for g in GROUPS},
        "candidate_stats": {g: [tests[g].head(h) for h in cands[g]] for g in GROUPS if tests[g] is not None},
        **report,
        "circuit": {g: [list(h) for h in circuit[g]] for g in GROUPS},
        "sizes": {g: len(circuit[g]) for g in GROUPS},
    }
    write_json(out_report, report)
    return circuit
