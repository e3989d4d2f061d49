"""The circuit drawn from the data: the four groups as columns of head boxes, and the edges found.

Columns run in the direction information flows: structure reader -> position detector (through
the detectors' values) -> position transmitter (values) -> value fetcher (queries) -> logits.
Heads are stacked by layer, lowest at the bottom. Each path-patching stage scored its senders
through the previous stage's top heads (the stage's ``receivers`` in ``path_patching.json``): an
edge joins a circuit head of a stage to a receiver of that stage when the head sits in a lower
layer (a head cannot reach a receiver of its own layer or below; path patching scores it 0).
Receivers that minimality did not keep are drawn dashed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from entity_tracking.circuits import Head, load_circuit
from entity_tracking.figures.style import GROUP_COLORS, GROUP_LABELS, INK, save, style
from entity_tracking.io import read_json

FLOW = ("struct_reader", "pos_detector", "pos_transmitter", "value_fetcher")  # left to right
# stage -> (the group its receivers belong to, the receivers' input the sender reaches)
EDGES = {
    "struct_reader": ("pos_detector", "V"),
    "pos_detector": ("pos_transmitter", "V"),
    "pos_transmitter": ("value_fetcher", "Q"),
}
COLUMN_GAP = 2.2  # between columns, in box widths


def _layout(columns: dict[str, list[Head]]) -> dict[tuple[str, Head], tuple[float, float]]:
    """Box centres per (group, head): one column per group, heads stacked by (layer, head), lowest first."""
    centres = {}
    for i, g in enumerate(FLOW):
        heads = sorted(columns[g])
        for k, head in enumerate(heads):
            centres[(g, head)] = (i * (1 + COLUMN_GAP), k - (len(heads) - 1) / 2)
    return centres


def plot_circuit_diagram(
    circuit: str | Path,
    path_patching: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    label: str = "model",
) -> None:
    """Draw one model's circuit (``circuit.json``) with the stage receivers of its ``path_patching.json``."""
    kept = load_circuit(circuit)
    stages = read_json(path_patching)["stages"]
    receivers: dict[str, list[Head]] = {g: [] for g in FLOW}
    for sender, (group, _) in EDGES.items():
        receivers[group] = [(int(a), int(b)) for a, b in stages[sender]["receivers"]]
    columns = {g: sorted(set(kept[g]) | set(receivers[g])) for g in FLOW}
    centres = _layout(columns)
    tallest = max([len(c) for c in columns.values()] + [1])
    step = min(0.32, max(0.16, 10 / tallest))  # inches per box row
    font = 7 if step >= 0.25 else 5
    logits_x = len(FLOW) * (1 + COLUMN_GAP)
    top = tallest / 2  # just above the highest box; the headers sit 0.5 in above it
    with style():
        fig, ax = plt.subplots(figsize=(9.5, tallest * step + 1.2))
        for sender, (group, _) in EDGES.items():  # edges under the boxes
            for s in kept[sender]:
                for r in receivers[group]:
                    if s[0] >= r[0]:
                        continue
                    (xs, ys), (xr, yr) = centres[(sender, s)], centres[(group, r)]
                    ax.plot([xs + 0.5, xr - 0.5], [ys, yr], color=GROUP_COLORS[sender], lw=0.9, alpha=0.5)
        for head in kept["value_fetcher"]:
            xs, ys = centres[("value_fetcher", head)]
            ax.plot([xs + 0.5, logits_x - 0.6], [ys, 0], color=GROUP_COLORS["value_fetcher"], lw=0.9, alpha=0.5)
        for (g, head), (x, y) in centres.items():  # circuit heads filled, receivers outside the circuit dashed
            inside = head in kept[g]
            box = Rectangle((x - 0.5, y - 0.36), 1, 0.72, facecolor=GROUP_COLORS[g] if inside else "white", zorder=3)
            box.set(edgecolor=GROUP_COLORS[g], linestyle="-" if inside else "--", linewidth=1.1)
            ax.add_patch(box)
            colour = "white" if inside else INK
            ax.text(x, y, f"L{head[0]}H{head[1]}", ha="center", va="center", fontsize=font, color=colour, zorder=4)
        ax.add_patch(Rectangle((logits_x - 0.6, -0.4), 1.2, 0.8, facecolor=INK, zorder=3))
        ax.text(logits_x, 0, "logits", ha="center", va="center", fontsize=8, color="white", zorder=4)
        for i, g in enumerate(FLOW):  # headers: group and size; between columns, the input the edges reach
            x = i * (1 + COLUMN_GAP)
            header = f"{GROUP_LABELS[g]}\n{len(kept[g])} head{'' if len(kept[g]) == 1 else 's'}"
            ax.text(x, top, header, ha="center", va="bottom", fontsize=8, color=GROUP_COLORS[g], fontweight="bold")
            if g in EDGES:
                ax.text(x + (1 + COLUMN_GAP) / 2, top, f"via {EDGES[g][1]}", ha="center", va="bottom", fontsize=8)
        ax.set_xlim(-0.8, logits_x + 0.8)
        ax.set_ylim(-tallest / 2 - 0.2, top + 0.55 / step)
        ax.axis("off")
        total = sum(len(kept[g]) for g in FLOW)
        note = "empty circuit" if not total else f"{total} heads"
        ax.set_title(f"Circuit of {label} ({note})\ndashed: receivers of a path-patching stage that minimality dropped")
        save(fig, out_pdf, out_png)
