"""The statistics behind every selection and verdict: per-record outcomes, paired exact tests,
one-sided tests of per-example scores, multiple-comparison corrections, bootstrap resamples.

* **Outcomes** of an accuracy are kept per record, as a string of ``0``/``1`` in record order
  (:func:`outcome_string`), so that two accuracies on the same prompts can be compared pairwise.
* **Paired comparison of two accuracies** (:func:`paired_test`): McNemar's exact test, i.e. a
  two-sided or one-sided binomial test (p = 1/2) on the discordant records, the only ones that
  carry information about the difference. With no discordant record the p-value is 1.
* **Per-head scores** (:func:`negative_mean_test`): a one-sided one-sample t-test per head that
  the mean per-example score is below 0 (path patching: more negative = more important).
* **Corrections** (:func:`adjust`): Holm (family-wise error, the default), Bonferroni,
  Benjamini-Hochberg (false discovery rate), or none.
* **Sign test** (:func:`sign_test`): paired differences that are not 0/1 (mean accuracy of a
  prompt over several start layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats as sps

CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")
ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")


class OutcomeError(ValueError):
    """Per-record outcomes are malformed or do not belong to the same records."""


def outcome_string(correct: torch.Tensor | Sequence[bool]) -> str:
    """Per-record outcomes as ``"0110..."`` (record order)."""
    values = correct.tolist() if isinstance(correct, torch.Tensor) else list(correct)
    return "".join("1" if bool(v) else "0" for v in values)


def parse_outcomes(text: str, what: str = "outcomes") -> np.ndarray:
    """The boolean array of an outcome string; a clear error for anything but ``0``/``1``."""
    if not isinstance(text, str) or set(text) - {"0", "1"}:
        raise OutcomeError(f"{what}: per-record outcomes must be a string of 0 and 1, got {str(text)[:40]!r}")
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def paired_test(a: str | np.ndarray, b: str | np.ndarray, alternative: str = "greater") -> dict[str, Any]:
    """McNemar's exact test of accuracy ``a`` against ``b`` on the same records.

    ``alternative``: ``greater`` (a is more accurate), ``less`` or ``two-sided``. Returns the
    records, both accuracies, their difference, the discordant counts (``a_only``: right in a,
    wrong in b; ``b_only``: the reverse) and the p-value.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; use one of {ALTERNATIVES}")
    x = parse_outcomes(a, "a") if isinstance(a, str) else np.asarray(a, dtype=bool)
    y = parse_outcomes(b, "b") if isinstance(b, str) else np.asarray(b, dtype=bool)
    if x.shape != y.shape:
        raise OutcomeError(f"paired test of outcomes on {len(x)} and {len(y)} records: they must be the same records")
    a_only, b_only = int((x & ~y).sum()), int((~x & y).sum())
    discordant = a_only + b_only
    p = float(sps.binomtest(a_only, discordant, 0.5, alternative=alternative).pvalue) if discordant else 1.0
    n = len(x)
    acc_a, acc_b = (float(x.mean()), float(y.mean())) if n else (float("nan"), float("nan"))
    return {
        "test": "McNemar exact (binomial on discordant records)",
        "alternative": alternative,
        "records": n,
        "accuracy_a": acc_a,
        "accuracy_b": acc_b,
        "difference": acc_a - acc_b,
        "a_only": a_only,
        "b_only": b_only,
        "p_value": p,
    }


def sign_test(differences: Sequence[float] | np.ndarray, alternative: str = "less") -> dict[str, Any]:
    """Exact sign test that paired ``differences`` lean below 0 (``less``), above (``greater``) or either way;
    zero differences are left out."""
    d = np.asarray(differences, dtype=float)
    below, above = int((d < 0).sum()), int((d > 0).sum())
    n = below + above
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; use one of {ALTERNATIVES}")
    # differences below 0 are the binomial's successes: "less" means more of them than half
    flipped = {"less": "greater", "greater": "less", "two-sided": "two-sided"}[alternative]
    p = float(sps.binomtest(below, n, 0.5, alternative=flipped).pvalue) if n else 1.0
    return {"test": "sign test (exact binomial)", "alternative": alternative, "pairs": len(d), "below": below,
            "above": above, "mean_difference": float(d.mean()) if len(d) else float("nan"), "p_value": p}  # fmt: skip


def negative_mean_test(examples: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-sided one-sample t-test per column that the mean of ``examples`` (``[N, ...]``) is below 0.

    Returns ``mean``, ``se`` (standard error), ``t`` and ``p`` (float64, shape ``examples.shape[1:]``).
    A column with no spread has p = 0 when its mean is negative and 1 otherwise (a score that is
    exactly 0 for every example: a sender that cannot reach the receivers).
    """
    x = examples.double()
    n = x.shape[0]
    mean = x.mean(0)
    se = x.std(0, unbiased=True) / n**0.5 if n >= 2 else torch.full_like(mean, float("inf"))
    t = torch.where(se > 0, mean / se.clamp_min(1e-300), torch.where(mean < 0, -torch.inf, torch.inf))
    df = max(n - 1, 1)
    p = torch.from_numpy(sps.t.cdf(t.numpy(), df)).to(torch.float64)
    p = torch.where(se > 0, p, (mean >= 0).double())
    return {"mean": mean, "se": se, "t": t, "p": p}


def adjust(p: torch.Tensor | np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values of a family (any shape; NaN entries are not in the family)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; use one of {CORRECTIONS}")
    arr = np.asarray(p.numpy() if isinstance(p, torch.Tensor) else p, dtype=float)
    flat = arr.ravel()
    out = np.full_like(flat, np.nan)
    idx = np.flatnonzero(~np.isnan(flat))
    m = len(idx)
    if m == 0:
        return out.reshape(arr.shape)
    vals = flat[idx]
    if method == "none":
        adj = vals.copy()
    elif method == "bonferroni":
        adj = np.minimum(vals * m, 1.0)
    elif method == "holm":
        order = np.argsort(vals, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * vals[order])
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    else:  # Benjamini-Hochberg
        order = np.argsort(vals, kind="stable")
        ranked = vals[order] * m / np.arange(1, m + 1)
        stepped = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    out[idx] = adj
    return out.reshape(arr.shape)


def bootstrap_rows(n: int, draws: int, seed: int) -> torch.Tensor:
    """``[draws, n]`` row indices, each row a resample with replacement of ``0..n-1`` (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (draws, n), generator=gen)
