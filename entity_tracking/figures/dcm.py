"""DCM results of one circuit: each group's test accuracy beside its chance floor.

Top panel: the three main desiderata (positional, object value, box-label value), a bar per group.
Bottom panel (when present): the additional desiderata, run on the position transmitter only, with
its ``positional`` accuracy as a reference line. Every bar carries its chance floor (black tick: the
same test pairs with nothing patched) and "k/n", the heads DCM selected out of the group's n.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from entity_tracking.circuits import GROUPS
from entity_tracking.figures.style import GROUP_COLORS, GROUP_LABELS, INK, MAIN_DESIDERATA, save, style

Key = tuple[str, str]  # (group, desideratum)
WIDTH = 0.8


def read_dcm_table(dcm: str | Path, circuit: str) -> dict[Key, dict[str, str]]:
    """The rows of ``dcm.csv`` for one circuit, by (group, desideratum), in table order."""
    with Path(dcm).open(encoding="utf-8") as fh:
        return {(r["group"], r["desideratum"]): r for r in csv.DictReader(fh) if r["circuit"] == circuit}


def _bar(ax, x: float, row: dict[str, str], colour: str, width: float) -> float:
    """One test-accuracy bar with its floor tick and k/n label; returns the highest point drawn."""
    acc, floor = float(row["test_accuracy"]), float(row["chance_floor"])
    ax.bar(x, acc, width, color=colour, zorder=2)
    ax.hlines(floor, x - width / 2, x + width / 2, colors="black", lw=2, zorder=3)
    top = max(acc, floor)
    ax.text(x, top + 0.01, f"{row['selected']}/{row['heads']}", ha="center", va="bottom", fontsize=7, rotation=90)
    return top


def plot_dcm(
    dcm: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    circuit: str = "",
    label: str = "",
    paper: Mapping[Key, float] | None = None,
) -> None:
    """The DCM figure of ``circuit`` from ``dcm.csv``; ``paper`` ((group, desideratum) -> accuracy) as diamonds."""
    rows = read_dcm_table(dcm, circuit)
    if not rows:
        raise ValueError(f"{dcm}: no DCM rows for circuit {circuit!r}")
    paper = paper or {}
    main = [d for d in MAIN_DESIDERATA if any(k[1] == d for k in rows)]
    extra = [k for k in rows if k[1] not in MAIN_DESIDERATA]
    model = next(iter(rows.values()))["model"]
    with style():
        panels = 2 if extra else 1
        fig, axes = plt.subplots(panels, 1, figsize=(max(8.0, 0.55 * len(extra) + 2.5), 3.6 * panels), squeeze=False)
        ax = axes[0, 0]
        tops = [0.0]
        width = WIDTH / len(GROUPS)
        for i, d in enumerate(main):
            for j, g in enumerate(GROUPS):
                if (g, d) in rows:
                    x = i + (j - (len(GROUPS) - 1) / 2) * width
                    tops.append(_bar(ax, x, rows[(g, d)], GROUP_COLORS[g], width * 0.9))
                    if (g, d) in paper:
                        ax.scatter(x, paper[(g, d)], marker="D", color="black", s=22, zorder=4)
                        tops.append(paper[(g, d)])
        ax.set_xticks(range(len(main)), [d.replace("_", " ") for d in main])
        ax.set_title("Test accuracy of the heads DCM selected, per group and desideratum")
        handles = [Patch(color=GROUP_COLORS[g], label=GROUP_LABELS[g]) for g in GROUPS]
        handles.append(Line2D([], [], color="black", lw=2, label="chance floor (nothing patched)"))
        if paper:
            handles.append(Line2D([], [], marker="D", color="black", ls="", label="paper"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if extra:
            ax2 = axes[1, 0]
            for i, key in enumerate(extra):
                tops.append(_bar(ax2, i, rows[key], GROUP_COLORS[key[0]], 0.7))
            ref = rows.get(("pos_transmitter", "positional"))
            if ref is not None:
                ax2.axhline(float(ref["test_accuracy"]), color=INK, ls=":", lw=1)
                ax2.text(len(extra) - 0.5, float(ref["test_accuracy"]), " positional", va="center", fontsize=8)
            names = [d.replace("_", " ") for _, d in extra]
            ax2.set_xticks(range(len(extra)), names, fontsize=8, rotation=30, ha="right", rotation_mode="anchor")
            owners = sorted({GROUP_LABELS[g] for g, _ in extra})
            ax2.set_title(f"Additional desiderata ({', '.join(owners)})")
        ymax = min(1.05, max(0.1, 1.3 * max(tops)))
        for a in axes.flat:
            a.set_ylim(0, ymax)
            a.set_ylabel("test accuracy")
            a.grid(axis="y", zorder=0)
        title = f"DCM on the circuit of {label or circuit}"
        if model != circuit:
            title += f" (run on {model})"
        fig.suptitle(f"{title}; k/n: heads selected of the group's n", fontsize=11)
        fig.tight_layout()
        save(fig, out_pdf, out_png)
