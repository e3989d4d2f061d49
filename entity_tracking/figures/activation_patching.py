"""Activation patching of one circuit's DCM heads into every model, as a table.

A heatmap of the mean accuracy over the repeats, model (rows) x (group, desideratum) (columns);
each cell reads "mean" over "(chance floor)". The paper's table is in percent; ours in fractions.
A second panel holds the additional desiderata (position transmitter), when present.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from entity_tracking.circuits import GROUPS
from entity_tracking.figures.style import DESIDERATUM_SHORT, GROUP_SHORT, MAIN_DESIDERATA, save, style, wrap

Key = tuple[str, str]  # (group, desideratum)


def _grid(rows: list[dict[str, str]], models: Sequence[str], columns: Sequence[Key], field: str) -> np.ndarray:
    out = np.full((len(models), len(columns)), np.nan)
    for r in rows:
        key = (r["group"], r["desideratum"])
        if r["model"] in models and key in columns:
            out[list(models).index(r["model"]), list(columns).index(key)] = float(r[field])
    return out


def _heatmap(ax, mean: np.ndarray, floor: np.ndarray, vmax: float):
    cmap = plt.get_cmap("viridis").with_extremes(bad="#EEEEEE")
    im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(mean):
        if np.isfinite(v):
            colour = "white" if v < 0.6 * vmax else "black"
            ax.text(j, i, f"{v:.2f}\n({floor[i, j]:.2f})", ha="center", va="center", fontsize=7, color=colour)
        else:
            ax.text(j, i, "—", ha="center", va="center", fontsize=8, color="#888888")
    ax.spines[:].set_visible(False)
    return im


def plot_activation_patching(
    activation_patching: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    circuit: str = "",
    models: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    """The activation-patching table of ``circuit`` from ``activation_patching.csv``."""
    with Path(activation_patching).open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["circuit"] == circuit]
    if not rows:
        raise ValueError(f"{activation_patching}: no activation-patching rows for circuit {circuit!r}")
    labels = labels or {}
    models = [m for m in (models or dict.fromkeys(r["model"] for r in rows)) if any(r["model"] == m for r in rows)]
    keys = list(dict.fromkeys((r["group"], r["desideratum"]) for r in rows))
    main = [(g, d) for d in MAIN_DESIDERATA for g in GROUPS if (g, d) in keys]
    extra = [k for k in keys if k[1] not in MAIN_DESIDERATA]
    panels = [(main, "Main desiderata")] + ([(extra, "Additional desiderata")] if extra else [])
    grids = [
        (_grid(rows, models, cols, "accuracy_mean"), _grid(rows, models, cols, "chance_floor_mean"))
        for cols, _ in panels
    ]
    vmax = max([0.2] + [float(np.nanmax(m)) for m, _ in grids if np.isfinite(m).any()])
    repeats = rows[0]["repeats"]
    with style():
        width = 2.5 + 0.75 * max(len(cols) for cols, _ in panels)
        heights = [len(models)] * len(panels)
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(width, 0.55 * len(models) * len(panels) + 1.6 * len(panels)), squeeze=False,
            gridspec_kw={"height_ratios": heights, "hspace": 0.4},
        )  # fmt: skip
        for ax, (cols, title), (mean, floor) in zip(axes[:, 0], panels, grids, strict=True):
            im = _heatmap(ax, mean, floor, vmax)
            ticks = [f"{GROUP_SHORT[g]}\n{DESIDERATUM_SHORT.get(d, wrap(d.replace('_', ' '), 12))}" for g, d in cols]
            ax.set_xticks(range(len(cols)), ticks, fontsize=7)
            ax.set_yticks(range(len(models)), [wrap(labels.get(m, m), 22) for m in models], fontsize=8)
            ax.set_title(title, fontsize=10)
        axes[-1, 0].set_xlabel("group and desideratum (cell: mean accuracy, chance floor in brackets)")
        fig.colorbar(im, ax=list(axes[:, 0]), shrink=0.8, label="mean accuracy")
        name = labels.get(circuit, circuit)
        fig.suptitle(f"Activation patching of the DCM heads of {name}'s circuit into each model ({repeats} repeats)")
        save(fig, out_pdf, out_png)
