"""Task accuracy of every model with its confidence interval."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from entity_tracking.figures.style import INK, ROLE_COLORS, ROLE_LABELS, save, style, wrap


def plot_accuracy(
    accuracy: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    chance: float | None = None,
    paper: Mapping[str, float] | None = None,
) -> None:
    """Bars of ``accuracy.csv`` (one per model, coloured by role) with CI error bars and a chance line.

    ``paper`` (model -> the paper's accuracy), when given, is drawn as black diamonds.
    """
    with Path(accuracy).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    x = range(len(rows))
    acc = [float(r["accuracy"]) for r in rows]
    low = [a - float(r["ci_low"]) for a, r in zip(acc, rows, strict=True)]
    high = [float(r["ci_high"]) - a for a, r in zip(acc, rows, strict=True)]
    level = round(100 * float(rows[0]["confidence"])) if rows else 95
    with style():
        fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(rows) + 1.5), 3.8))
        ax.bar(x, acc, color=[ROLE_COLORS[r["role"]] for r in rows], width=0.65, zorder=2)
        ax.errorbar(x, acc, yerr=[low, high], fmt="none", ecolor=INK, capsize=4, lw=1.2, zorder=3)
        for i, a in enumerate(acc):
            ax.text(i + 0.05, a + high[i] + 0.015, f"{a:.2f}", ha="left", va="bottom", fontsize=9)
        handles = [Patch(color=ROLE_COLORS[role], label=ROLE_LABELS[role]) for role in ROLE_COLORS]
        if chance is not None:
            ax.axhline(chance, color=INK, ls="--", lw=1, zorder=1)
            handles.append(Line2D([], [], color=INK, ls="--", lw=1, label=f"chance ({chance:.2f})"))
        if paper:
            px = [i for i, r in enumerate(rows) if r["model"] in paper]
            ax.scatter(px, [paper[rows[i]["model"]] for i in px], marker="D", color="black", s=30, zorder=4)
            handles.append(Line2D([], [], marker="D", color="black", ls="", label="paper"))
        ax.set_xticks(list(x), [wrap(r["label"]) for r in rows], fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"task accuracy ({level} % CI)")
        ax.set_title("Entity-tracking accuracy of each model")
        ax.grid(axis="y", zorder=0)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        save(fig, out_pdf, out_png)
