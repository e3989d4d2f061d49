"""Faithfulness of every circuit on every model, beside the random-circuit baseline."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from entity_tracking.figures.style import save, style, wrap


def _grid(rows: list[dict[str, str]], circuits: Sequence[str], models: Sequence[str], value) -> np.ndarray:
    """A circuit x model matrix of ``value(row)``; NaN where the pair was not evaluated."""
    out = np.full((len(circuits), len(models)), np.nan)
    for r in rows:
        if r["circuit"] in circuits and r["model"] in models:
            v = value(r)
            out[circuits.index(r["circuit"]), models.index(r["model"])] = np.nan if v is None else v
    return out


def _ratio(num: str, den: str) -> float | None:
    return float(num) / float(den) if float(den) else None


def plot_faithfulness(
    faithfulness: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    circuits: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    """Two heatmaps, circuit x model: faithfulness, and random circuits' accuracy / model accuracy.

    Cells show two decimals of the full-precision values of ``faithfulness.csv``; grey cells were
    not evaluated.
    """
    with Path(faithfulness).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    circuits = list(circuits or dict.fromkeys(r["circuit"] for r in rows))
    models = list(models or dict.fromkeys(r["model"] for r in rows))
    labels = labels or {}
    faith = _grid(rows, circuits, models, lambda r: float(r["faithfulness"]) if r["faithfulness"] else None)
    rand = _grid(rows, circuits, models, lambda r: _ratio(r["random_accuracy_mean"], r["model_accuracy"]))
    vmax = max(1.0, float(np.nanmax(faith)) if np.isfinite(faith).any() else 1.0)
    with style():
        width = 2.0 + 2 * (1.2 * len(models) + 0.5)
        fig, axes = plt.subplots(1, 2, figsize=(width, 1.1 * len(circuits) + 2.4), sharey=True)
        titles = ("Faithfulness: circuit acc. / model acc.", "Random circuits (same sizes), same ratio")
        for ax, data, title in zip(axes, (faith, rand), titles, strict=True):
            cmap = plt.get_cmap("viridis").with_extremes(bad="#EEEEEE")
            im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
            for (i, j), v in np.ndenumerate(data):
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="white" if v < 0.6 * vmax else "black",
                    )
                else:
                    ax.text(j, i, "—", ha="center", va="center", fontsize=9, color="#888888")
            ax.set_xticks(range(len(models)), [wrap(labels.get(m, m), 14) for m in models], fontsize=8)
            ax.set_title(title)
            ax.set_xlabel("evaluated on model")
            ax.spines[:].set_visible(False)
        circuit_names = [wrap(labels.get(c, c) + " circuit", 20) for c in circuits]
        axes[0].set_yticks(range(len(circuits)), circuit_names, fontsize=8)
        axes[0].set_ylabel("circuit")
        fig.colorbar(im, ax=list(axes), shrink=0.8, label="fraction of the model's accuracy")
        save(fig, out_pdf, out_png)
