"""Causal impact of heads: a fine-tuned model's candidate heads against its base model's.

Top panel: the fine-tuned model's candidate nodes (head, group) from its path patching, sorted by
absolute score, in the group's colour when the final circuit keeps the head in that group.
Bottom panel (y inverted): for the same bars, the base model's absolute score of the same head at
the same position class if the base has it among its candidates, coloured when the base circuit
keeps it. (The original coloured by head id in any group; here membership is per node.)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from entity_tracking.circuits import GROUPS, POSITION_OF, Head, load_circuit
from entity_tracking.figures.style import GROUP_COLORS, GROUP_LABELS, GROUP_SHORT, MUTED, save, style, wrap
from entity_tracking.io import read_json, read_safetensors

Bar = tuple[float, str]  # (|score|, colour)


def _model_side(
    scores: str | Path, minimality: str | Path, circuit: str | Path, metric: str
) -> dict[tuple[str, Head], Bar]:
    """Every candidate node of one model: (group, head) -> (|path-patching score|, colour)."""
    tensors = read_safetensors(scores)
    cands = read_json(minimality)["candidates"]
    kept = load_circuit(circuit)
    out = {}
    for g in GROUPS:
        for layer, head in cands[g]:
            score = abs(float(tensors[f"{g}.{metric}"][layer, head]))
            out[(g, (layer, head))] = (score, GROUP_COLORS[g] if (layer, head) in kept[g] else MUTED)
    return out


def _same_position(side: dict[tuple[str, Head], Bar], group: str, head: Head) -> Bar:
    """The bar of ``head`` at ``group``'s position class on the other model, or (0, muted) if not a candidate."""
    for g in GROUPS:
        if POSITION_OF[g] == POSITION_OF[group] and (g, head) in side:
            return side[(g, head)]
    return (0.0, MUTED)


def plot_causal_impact(
    ft_scores: str | Path,
    ft_minimality: str | Path,
    ft_circuit: str | Path,
    base_scores: str | Path,
    base_minimality: str | Path,
    base_circuit: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    ft_label: str = "fine-tuned",
    base_label: str = "base",
    metric: str = "prob",
) -> None:
    """The two-panel bar chart of one fine-tuned model against its base model."""
    ft = _model_side(ft_scores, ft_minimality, ft_circuit, metric)
    base = _model_side(base_scores, base_minimality, base_circuit, metric)
    order = sorted(ft, key=lambda node: (-ft[node][0], GROUPS.index(node[0]), node[1]))
    top = [ft[n] for n in order]
    bottom = [_same_position(base, g, h) for g, h in order]
    x = range(len(order))
    with style():
        width = min(15.0, max(7.0, 0.28 * len(order) + 2.5))
        fig, (ax_ft, ax_base) = plt.subplots(2, 1, sharex=True, figsize=(width, 5.0), gridspec_kw={"hspace": 0.08})
        ax_ft.bar(x, [s for s, _ in top], color=[c for _, c in top], width=0.8)
        ax_base.bar(x, [s for s, _ in bottom], color=[c for _, c in bottom], width=0.8)
        ymax = max([s for s, _ in top + bottom] + [1e-6]) * 1.08
        ax_ft.set_ylim(0, ymax)
        ax_base.set_ylim(ymax, 0)  # inverted: the base's bars hang down
        for ax, label in ((ax_ft, ft_label), (ax_base, base_label)):
            ax.set_ylabel("|score|")
            ax.spines[["top", "right", "bottom"]].set_visible(False)
            ax.grid(axis="y")
            ax.text(1.01, 0.98, wrap(label, 26), transform=ax.transAxes, ha="left", va="top", fontweight="bold")
        ax_ft.tick_params(axis="x", length=0)
        ax_base.set_xlim(-1, len(order))
        if len(order) <= 60:
            names = [f"{GROUP_SHORT[g]} L{h[0]}H{h[1]}" for g, h in order]
            ax_base.set_xticks(list(x), names, rotation=90, fontsize=8)
        else:
            ax_base.set_xticks([])
        ax_base.set_xlabel(f"candidate heads of the fine-tuned model, by absolute path-patching score ({metric})")
        ax_ft.set_title("Causal impact of heads: the fine-tuned model (top) against its base model (bottom)")
        handles = [Patch(color=GROUP_COLORS[g], label=f"{GROUP_LABELS[g]} (in circuit)") for g in GROUPS]
        handles.append(Patch(color=MUTED, label="candidate, not in circuit"))
        ax_base.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8)
        save(fig, out_pdf, out_png)
