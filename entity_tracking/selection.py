"""Head selection from per-example path-patching scores, with a noise guard (config ``circuit.selection``).

A path-patching stage scores every sender head on every discovery prompt (``[N, layers, heads]``;
more negative = more important). A head **qualifies** for the stage when

* it is *eligible*: without receivers (value fetcher) every head is; otherwise its layer is below
  the highest receiver layer (a sender at or above it cannot reach any receiver: its score is 0);
* its mean score is negative beyond noise: a one-sided one-sample t-test per head (H1: mean < 0)
  whose p-value, adjusted over the stage's eligible heads (``correction``: Holm by default), is
  below ``alpha``;
* and the effect is not negligible: mean score ``<= -min_effect`` (in the selection metric's units).

A stage selects at most ``k`` qualifying heads, most negative mean first (ties by layer, head).
A stage with no qualifying head has **no signal**: it selects nothing, and the stages after it are
not run (the chain stops: they would have no receivers).

**Groups from stages** (:func:`assign_groups`). The value fetcher and the position transmitter act
at the same position (the last token). A head that qualifies for both goes to the one where its
mean score is more negative (a tie goes to the earlier stage); it never goes where it does not
qualify, and a freed place is not refilled (the original's rule: docs/differences.md).

**Bootstrap** (:func:`bootstrap_frequencies`): the discovery prompts are resampled with replacement
and the selection is rerun on the stored per-example scores (no new forward pass): how often each
head is selected into its group. Each stage keeps the receivers of the actual run (a resample
cannot rerun a stage with other receivers), and a stage with no signal in a resample stops that
resample's chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entity_tracking.circuits import GROUPS, POSITION_OF, Circuit, Head
from entity_tracking.stats import adjust, bootstrap_rows, negative_mean_test

SIGNAL, NO_SIGNAL, NOT_RUN = "signal", "no signal", "not run"
# Every eligible head with scores of any sign qualifies (only senders that score exactly 0 never do): the
# original's plain top-k, for benchmarks that time all four stages on models without signal (random weights).
NO_GUARD: dict[str, Any] = {"alpha": 1.0, "correction": "none", "min_effect": -math.inf}
STATUSES: tuple[str, ...] = (SIGNAL, NO_SIGNAL, NOT_RUN)
SETTINGS_KEYS: tuple[str, ...] = ("alpha", "correction", "min_effect")


@dataclass
class StageTest:
    """The per-head statistics of one stage, each ``[layers, heads]``."""

    mean: torch.Tensor
    se: torch.Tensor
    p: torch.Tensor  # one-sided, unadjusted (NaN where not eligible)
    p_adjusted: torch.Tensor  # over the eligible heads (NaN where not eligible)
    eligible: torch.Tensor  # bool
    qualifies: torch.Tensor  # bool

    def head(self, head: Head) -> dict[str, Any]:
        """One head's statistics, JSON-ready."""

        def num(x: torch.Tensor) -> float | None:
            value = float(x[head])
            return None if np.isnan(value) else value

        return {
            "head": list(head),
            "mean": float(self.mean[head]),
            "se": num(self.se),
            "p": num(self.p),
            "p_adjusted": num(self.p_adjusted),
            "qualifies": bool(self.qualifies[head]),
        }


def eligible_senders(layers: int, heads: int, receivers: Sequence[Head]) -> torch.Tensor:
    """``[layers, heads]``: every head without receivers, else the heads below the highest receiver layer."""
    top = max((layer for layer, _ in receivers), default=layers)
    return (torch.arange(layers) < top)[:, None].expand(layers, heads).clone()


def stage_test(examples: torch.Tensor, receivers: Sequence[Head], settings: dict[str, Any]) -> StageTest:
    """The noise guard of one stage from its per-example scores ``[N, layers, heads]``."""
    stats = negative_mean_test(examples)
    eligible = eligible_senders(examples.shape[1], examples.shape[2], receivers)
    p = torch.where(eligible, stats["p"], torch.nan)
    p_adjusted = torch.from_numpy(adjust(p, settings["correction"]))
    qualifies = eligible & (p_adjusted < settings["alpha"]) & (stats["mean"] <= -settings["min_effect"])
    return StageTest(stats["mean"], stats["se"], p, p_adjusted, eligible, qualifies)


def ranked(test: StageTest, k: int) -> list[Head]:
    """At most ``k`` qualifying heads, most negative mean first, ties by (layer, head)."""
    n_heads = test.mean.shape[1]
    flat = test.mean.flatten().tolist()
    ok = test.qualifies.flatten().tolist()
    order = sorted((i for i in range(len(flat)) if ok[i]), key=lambda i: (flat[i], i))[:k]
    return [(i // n_heads, i % n_heads) for i in order]


def assign_groups(tests: dict[str, StageTest | None], sizes: dict[str, int]) -> Circuit:
    """Candidate heads per group: each stage's top ``sizes[group]`` qualifying heads; a head qualifying for two
    groups of one position goes where its mean score is more negative (tie: the earlier stage)."""
    lists = {g: ranked(t, sizes[g]) if t is not None else [] for g, t in tests.items()}
    lists.update({g: [] for g in GROUPS if g not in lists})
    out: Circuit = {}
    for g in GROUPS:
        keep = []
        for head in lists[g]:
            mine = float(tests[g].mean[head])  # type: ignore[union-attr]
            beaten = False
            for other in GROUPS:
                if other == g or POSITION_OF[other] != POSITION_OF[g] or head not in lists[other]:
                    continue
                theirs = float(tests[other].mean[head])  # type: ignore[union-attr]
                if theirs < mine or (theirs == mine and GROUPS.index(other) < GROUPS.index(g)):
                    beaten = True
            if not beaten:
                keep.append(head)
        out[g] = keep
    return out


def chain_tests(
    examples: dict[str, torch.Tensor], receivers: dict[str, Sequence[Head]], settings: dict[str, Any]
) -> dict[str, StageTest | None]:
    """Every stage's test, in stage order; ``None`` for a stage not run or after a stage with no signal."""
    out: dict[str, StageTest | None] = {}
    stopped = False
    for g in GROUPS:
        if stopped or g not in examples:
            out[g], stopped = None, True
            continue
        out[g] = stage_test(examples[g], receivers.get(g, []), settings)
        stopped = not bool(out[g].qualifies.any())  # type: ignore[union-attr]
    return out


def bootstrap_frequencies(
    examples: dict[str, torch.Tensor],
    receivers: dict[str, Sequence[Head]],
    sizes: dict[str, int],
    settings: dict[str, Any],
    draws: int,
    seed: int,
) -> tuple[dict[str, torch.Tensor], dict[str, float], list[Circuit]]:
    """Selection frequencies over ``draws`` resamples of the prompts: per group ``[layers, heads]``, the share
    of resamples in which each stage had signal, and every resample's candidate groups."""
    ref = next(iter(examples.values()))
    n, layers, heads = ref.shape
    counts = {g: torch.zeros(layers, heads, dtype=torch.float64) for g in GROUPS}
    signal = dict.fromkeys(GROUPS, 0)
    picks: list[Circuit] = []
    for rows in bootstrap_rows(n, draws, seed):
        tests = chain_tests({g: x[rows] for g, x in examples.items()}, receivers, settings)
        cands = assign_groups(tests, sizes)
        picks.append(cands)
        for g in GROUPS:
            signal[g] += int(tests[g] is not None and bool(tests[g].qualifies.any()))  # type: ignore[union-attr]
            for head in cands[g]:
                counts[g][head] += 1
    return {g: c / draws for g, c in counts.items()}, {g: s / draws for g, s in signal.items()}, picks


class StageFileError(ValueError):
    """Path-patching outputs that disagree with each other or with the selection settings."""


def load_stages(
    scores_file: str | Path, summary_file: str | Path, metric: str, settings: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, list[Head]]]:
    """The per-example scores (``metric``) of the stages that were run and every stage's receivers, from rule
    path_patching's two files, checked against each other and against the selection ``settings``."""
    from entity_tracking.io import read_json, read_safetensors

    tensors = read_safetensors(scores_file)
    summary = read_json(summary_file)
    fix = f"Fix: delete {scores_file} and {summary_file} and rerun snakemake to remake them."
    stages = summary.get("stages") if isinstance(summary, dict) else None
    if not isinstance(stages, dict) or set(stages) != set(GROUPS):
        raise StageFileError(f"{summary_file} has no entry per path-patching stage. {fix}")
    if summary.get("selection") != {k: settings[k] for k in SETTINGS_KEYS}:
        raise StageFileError(
            f"{summary_file} was selected with {summary.get('selection')}, not the configured "
            f"{ {k: settings[k] for k in SETTINGS_KEYS} }. {fix}"
        )
    examples = {g: tensors[f"{g}.{metric}.examples"] for g in GROUPS if f"{g}.{metric}.examples" in tensors}
    ran = [g for g in GROUPS if stages[g].get("status") in (SIGNAL, NO_SIGNAL)]
    if list(examples) != ran:
        raise StageFileError(
            f"{scores_file} holds per-example scores of the stages {list(examples)}, but {summary_file} says "
            f"{ran} were run. {fix}"
        )
    receivers = {g: [(int(a), int(b)) for a, b in stages[g].get("receivers", [])] for g in GROUPS}
    return examples, receivers


def stage_status(tests: dict[str, StageTest | None], g: str) -> tuple[str, str]:
    """(status, reason) of a stage: signal, no signal (nothing beyond noise) or not run (the chain stopped)."""
    t = tests[g]
    if t is None:
        earlier = [x for x in GROUPS[: GROUPS.index(g)] if tests[x] is not None and not bool(tests[x].qualifies.any())]
        stop = earlier[0] if earlier else None
        return NOT_RUN, f"the chain stopped: no signal in stage {stop}" if stop else "the stage was not run"
    if not bool(t.qualifies.any()):
        return NO_SIGNAL, f"no eligible head beyond noise ({int(t.eligible.sum())} eligible)"
    return SIGNAL, f"{int(t.qualifies.sum())} of {int(t.eligible.sum())} eligible heads beyond noise"


BOOTSTRAP_COLUMNS = (
    "group",
    "layer",
    "head",
    "stage_status",
    "eligible",
    "mean",
    "se",
    "p",
    "p_adjusted",
    "qualifies",
    "candidate",
    "in_circuit",
    "frequency",
)


def _share_summary(shares: list[float]) -> dict[str, float] | None:
    """Mean and 2.5 / 97.5 % percentiles of resampled shares (None when there is nothing to share)."""
    if not shares:
        return None
    arr = np.asarray(shares)
    return {"mean": float(arr.mean()), "low": float(np.quantile(arr, 0.025)), "high": float(np.quantile(arr, 0.975))}


def run_bootstrap(
    model: str,
    scores_file: str | Path,
    summary_file: str | Path,
    circuit_file: str | Path,
    sizes: dict[str, int],
    metric: str,
    settings: dict[str, Any],
    out_csv: str | Path,
    out_json: str | Path,
) -> dict[str, Any]:
    """Rule bootstrap: every head's statistics and selection frequency (CSV), and per group the share of
    resamples with signal and how much of the candidate set a resample selects again (JSON)."""
    from entity_tracking.circuits import load_circuit
    from entity_tracking.io import sha256_file, write_csv, write_json

    examples, receivers = load_stages(scores_file, summary_file, metric, settings)
    tests = chain_tests(examples, receivers, settings)
    cands = assign_groups(tests, sizes)
    circuit = load_circuit(circuit_file)
    if not examples:
        raise StageFileError(f"{scores_file} holds no per-example scores. Fix: delete it and rerun snakemake.")
    freq, signal, picks = bootstrap_frequencies(
        examples, receivers, sizes, settings, settings["bootstrap"], settings["bootstrap_seed"]
    )
    rows = []
    for g in GROUPS:
        t = tests[g]
        if t is None:
            continue
        status = stage_status(tests, g)[0]
        layers, heads = t.mean.shape
        for layer in range(layers):
            for head in range(heads):
                h = (layer, head)
                stats = t.head(h)
                rows.append(
                    {
                        "group": g,
                        "layer": layer,
                        "head": head,
                        "stage_status": status,
                        "eligible": int(t.eligible[h]),
                        "mean": stats["mean"],
                        "se": stats["se"],
                        "p": stats["p"],
                        "p_adjusted": stats["p_adjusted"],
                        "qualifies": int(stats["qualifies"]),
                        "candidate": int(h in cands[g]),
                        "in_circuit": int(h in circuit[g]),
                        "frequency": float(freq[g][h]),
                    }
                )
    write_csv(out_csv, BOOTSTRAP_COLUMNS, rows)
    nodes = {(g, h) for g in GROUPS for h in cands[g]}
    agreement: dict[str, Any] = {}
    for key in (*GROUPS, "all"):
        mine = {n for n in nodes if key in ("all", n[0])}
        shares = [len(mine & {(g, h) for g in GROUPS for h in pick[g]}) / len(mine) for pick in picks] if mine else []
        agreement[key] = _share_summary(shares)
    result = {
        "model": model,
        "metric": metric,
        "draws": settings["bootstrap"],
        "seed": settings["bootstrap_seed"],
        "selection": {k: settings[k] for k in SETTINGS_KEYS},
        "scores_sha256": sha256_file(scores_file),
        "circuit_sha256": sha256_file(circuit_file),
        "stage_status": {g: stage_status(tests, g)[0] for g in GROUPS},
        "stage_signal_share": signal,
        "candidates": {g: [list(h) for h in cands[g]] for g in GROUPS},
        "candidate_agreement": agreement,
        "circuit_frequency": {g: [[*h, float(freq[g][h])] for h in circuit[g]] for g in GROUPS},
    }
    write_json(out_json, result)
    return result
