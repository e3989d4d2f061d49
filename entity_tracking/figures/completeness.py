"""Completeness of each model's own circuit: F(C minus K) against F(M minus K)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from entity_tracking.circuits import GROUPS
from entity_tracking.figures.style import GROUP_COLORS, GROUP_LABELS, INK, save, style
from entity_tracking.io import read_json


def plot_completeness(
    completeness: Sequence[str | Path],
    out_pdf: str | Path,
    out_png: str | Path,
    labels: dict[str, str] | None = None,
) -> None:
    """One panel per ``completeness/<model>.json``: random subsets K as dots, whole groups as diamonds, y = x."""
    results = [read_json(path) for path in completeness]
    labels = labels or {}
    cols = min(len(results), 4)
    rows = math.ceil(len(results) / cols)
    with style():
        fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.5 * rows + 0.6), squeeze=False)
        for ax in axes.flat[len(results) :]:
            ax.set_visible(False)
        for ax, res in zip(axes.flat, results, strict=False):
            draws = res["random_draws"]
            ax.axline((0, 0), slope=1, color=INK, ls="--", lw=0.8, alpha=0.6)
            ax.scatter([d["F_C_minus_K"] for d in draws], [d["F_M_minus_K"] for d in draws], s=14, color=INK, alpha=0.7)
            for g in GROUPS:
                row = res["groups"][g]
                ax.scatter(
                    row["F_C_minus_K"], row["F_M_minus_K"], marker="D", s=55, color=GROUP_COLORS[g], edgecolor="white"
                )
            full = res["full_circuit"]
            ax.scatter(full["F_C_minus_K"], full["F_M_minus_K"], marker="*", s=110, color="black", zorder=3)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            ax.grid(True)
            diff = res["random"]["diff"]
            ax.set_title(
                f"{labels.get(res['model'], res['model'])}\nmean |ΔF| = {diff['mean']:.2f} (sd {diff['std']:.2f})",
                fontsize=9,
            )
        for ax in axes[:, 0]:
            ax.set_ylabel("F(M \\ K): full model without K")
        for ax in axes[-1, :]:
            ax.set_xlabel("F(C \\ K): circuit without K")
        handles = [Line2D([], [], marker="o", color=INK, ls="", label="random K (each node with p = 1/2)")]
        handles += [
            Line2D([], [], marker="D", color=GROUP_COLORS[g], ls="", label=f"K = {GROUP_LABELS[g]}") for g in GROUPS
        ]
        handles.append(Line2D([], [], marker="*", color="black", ls="", ms=10, label="K = ∅ (whole circuit)"))
        handles.append(Line2D([], [], color=INK, ls="--", label="y = x"))
        fig.suptitle("Circuit completeness: each model's own circuit")
        fig.tight_layout()
        fig.legend(handles=handles, loc="upper center", ncol=4, bbox_to_anchor=(0.5, 0.0))
        save(fig, out_pdf, out_png)
