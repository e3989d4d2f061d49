"""Cross-model activation patching (the paper's ``CMAP.png``): a panel pair per (source, target).

Left: output patching, a bar per group and the full circuit, with 95 % intervals; right: input
patching (q, k, v, qk, qkv) of the configured groups. Dashed lines: the target's own accuracy
and the source's, on the same prompts. Hatched bars patched nothing (an empty head set). The y axis
is cut to the range of the values, as in the paper's figure.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from entity_tracking.figures.style import GROUP_COLORS, GROUP_SHORT, INK, ROLE_COLORS, save, style

FULL = "full_circuit"
BAR_LABELS = {**GROUP_SHORT, FULL: "full"}
COLORS = {**GROUP_COLORS, FULL: INK}
TARGET, SOURCE = ROLE_COLORS["base"], ROLE_COLORS["finetuned"]  # the usual pair: fine-tuned -> its base


def _bars(ax, xs: list[float], rows: list[dict[str, str]], width: float) -> None:
    for x, r in zip(xs, rows, strict=True):
        acc, patched = float(r["accuracy"]), r["patched"] == "True"
        err = [[acc - float(r["ci_low"])], [float(r["ci_high"]) - acc]]
        colour = COLORS[r["group"]]
        ax.bar(x, acc, width, color=colour if patched else "white", edgecolor=colour, hatch="" if patched else "//")
        ax.errorbar(x, acc, yerr=err, fmt="none", ecolor=INK, capsize=2, lw=0.8)
        ax.text(x, float(r["ci_high"]) + 0.005, f"{acc:.2f}", ha="center", va="bottom", fontsize=7)


def _limits(rows: list[dict[str, str]], extra: list[float]) -> tuple[float, float]:
    values = [float(r[k]) for r in rows for k in ("ci_low", "ci_high", "source_accuracy", "target_accuracy")] + extra
    return max(0.0, math.floor(20 * min(values)) / 20 - 0.05), min(1.0, max(values) + 0.06)


def plot_cmap(
    cmap: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    labels: dict[str, str] | None = None,
    paper: Mapping[str, Mapping[str, float]] | None = None,
) -> None:
    """Every pair of ``cmap.csv``; ``paper`` (source -> group or "full" -> accuracy) as diamonds."""
    with Path(cmap).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{cmap}: no CMAP rows")
    labels, paper = labels or {}, paper or {}
    pairs = list(dict.fromkeys((r["source"], r["target"]) for r in rows))
    with style():
        fig, axes = plt.subplots(
            len(pairs), 2, figsize=(11, 3.4 * len(pairs) + 0.6), squeeze=False, gridspec_kw={"width_ratios": [1, 1.6]}
        )
        for (source, target), (ax_out, ax_in) in zip(pairs, axes, strict=True):
            mine = [r for r in rows if (r["source"], r["target"]) == (source, target)]
            out = [r for r in mine if r["kind"] == "output"]
            _bars(ax_out, list(range(len(out))), out, 0.7)
            ax_out.set_xticks(range(len(out)), [f"{BAR_LABELS[r['group']]}\n{r['heads']} h" for r in out], fontsize=8)
            ref = paper.get(source, {})
            px = [i for i, r in enumerate(out) if ("full" if r["group"] == FULL else r["group"]) in ref]
            py = [ref["full" if out[i]["group"] == FULL else out[i]["group"]] for i in px]
            if px:
                ax_out.scatter(px, py, marker="D", color="black", s=22, zorder=4)
            inp = [r for r in mine if r["kind"] == "input"]
            groups = list(dict.fromkeys(r["group"] for r in inp))
            xs, ticks = [], []
            for gi, g in enumerate(groups):
                variants = [r for r in inp if r["group"] == g]
                for vi, r in enumerate(variants):
                    xs.append(gi * (len(variants) + 1) + vi)
                    ticks.append(f"{r['variant']}" + (f"\n{BAR_LABELS[g]}" if vi == len(variants) // 2 else ""))
            _bars(ax_in, xs, inp, 0.8)
            ax_in.set_xticks(xs, ticks, fontsize=8)
            low, high = _limits(mine, py)
            for ax in (ax_out, ax_in):
                ax.axhline(float(mine[0]["target_accuracy"]), color=TARGET, ls="--")
                ax.axhline(float(mine[0]["source_accuracy"]), color=SOURCE, ls="--")
                ax.set_ylim(low, high)
                ax.grid(axis="y")
            pair = f"{labels.get(source, source)} → {labels.get(target, target)}"
            ax_out.set_title(f"{pair}: output patching", fontsize=10)
            ax_in.set_title(f"{pair}: input patching" if inp else "no input patching", fontsize=10)
            ax_out.set_ylabel("accuracy of the target")
        handles = [
            Line2D([], [], color=TARGET, ls="--", label="target's own accuracy"),
            Line2D([], [], color=SOURCE, ls="--", label="source's own accuracy"),
            Line2D([], [], color=INK, marker="|", ls="", label="95 % interval"),
            Patch(facecolor="white", edgecolor=INK, hatch="//", label="nothing patched (no heads)"),
        ]
        if paper:
            handles.append(Line2D([], [], marker="D", color="black", ls="", label="paper"))
        fig.suptitle("CMAP: the source's head activations patched into the target (h: heads patched)")
        fig.tight_layout()
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 0.0))
        save(fig, out_pdf, out_png)
