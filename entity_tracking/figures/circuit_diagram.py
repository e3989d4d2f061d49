"""The circuit drawn from the data: the four groups as columns of head boxes, and the edges found.

Columns run in the direction information flows: structure reader -> position detector (through
the detectors' values) -> position transmitter (values) -> value fetcher (queries) -> logits.
Heads are stacked by layer, lowest at the bottom. Each path-patching stage scored its senders
through the previous stage's top heads (the stage's ``receivers`` in ``path_patching.json``): an
edge joins a circuit head of a stage to a receiver of that stage when the head sits in a lower
layer (a head cannot reach a receiver of its own layer or below; path patching scores it 0).
Receivers that minimality did not keep are drawn dashed. Each box is shaded by the head's bootstrap
selection frequency in its group (``bootstrap.csv``: how often a resample of the discovery prompts
selects it) and shows it; a group whose stage found nothing beyond noise says "no signal", one
after it "not run".
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from entity_tracking.circuits import Head, group_status, load_circuit
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


def read_frequencies(path: str | Path) -> dict[tuple[str, Head], float]:
    """(group, head) -> bootstrap selection frequency, from a ``bootstrap.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return {(r["group"], (int(r["layer"]), int(r["head"]))): float(r["frequency"]) for r in csv.DictReader(fh)}


def box_style(group: str, head: Head, inside: bool, frequency: float) -> dict[str, object]:
    """How one head's box is drawn: fill shaded by its bootstrap selection frequency (light = rarely selected),
    solid edge for a circuit head and dashed for a receiver outside the circuit, name and frequency as text."""
    return {
        "facecolor": to_rgba(GROUP_COLORS[group], 0.12 + 0.88 * frequency),
        "linestyle": "-" if inside else "--",
        "text": f"L{head[0]}H{head[1]}\n{frequency:.2f}",
        "text_color": "white" if frequency >= 0.6 else INK,
    }


def _header(group: str, size: int, status: str) -> str:
    if status in ("no signal", "not run"):
        return f"{GROUP_LABELS[group]}\n{status}"
    return f"{GROUP_LABELS[group]}\n{size} head{'' if size == 1 else 's'}"


def plot_circuit_diagram(
    circuit: str | Path,
    path_patching: str | Path,
    bootstrap: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    label: str = "model",
) -> None:
    """Draw one model's circuit (``circuit.json``) with the stage receivers of its ``path_patching.json``, each
    head shaded by its bootstrap selection frequency (``bootstrap.csv``)."""
    kept = load_circuit(circuit)
    status = {g: v["status"] for g, v in group_status(circuit).items()}
    freq = read_frequencies(bootstrap)
    stages = read_json(path_patching)["stages"]
    receivers: dict[str, list[Head]] = {g: [] for g in FLOW}
    for sender, (group, _) in EDGES.items():
        receivers[group] = [(int(a), int(b)) for a, b in stages[sender].get("receivers", [])]
    columns = {g: sorted(set(kept[g]) | set(receivers[g])) for g in FLOW}
    centres = _layout(columns)
    tallest = max([len(c) for c in columns.values()] + [1])
    step = min(0.36, max(0.18, 10 / tallest))  # inches per box row
    font = 6.5 if step >= 0.25 else 4.5
    logits_x = len(FLOW) * (1 + COLUMN_GAP)
    top = tallest / 2  # just above the highest box; the headers sit 0.5 in above it
    with style():
        fig, ax = plt.subplots(figsize=(9.5, tallest * step + 1.4))
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
        for (g, head), (x, y) in centres.items():  # circuit heads solid, receivers outside the circuit dashed
            look = box_style(g, head, head in kept[g], freq.get((g, head), 0.0))
            box = Rectangle((x - 0.5, y - 0.38), 1, 0.76, facecolor=look["facecolor"], zorder=3)
            box.set(edgecolor=GROUP_COLORS[g], linestyle=look["linestyle"], linewidth=1.1)
            ax.add_patch(box)
            ax.text(x, y, look["text"], ha="center", va="center", fontsize=font, color=look["text_color"], zorder=4,
                    linespacing=0.9)  # fmt: skip
        ax.add_patch(Rectangle((logits_x - 0.6, -0.4), 1.2, 0.8, facecolor=INK, zorder=3))
        ax.text(logits_x, 0, "logits", ha="center", va="center", fontsize=8, color="white", zorder=4)
        for i, g in enumerate(FLOW):  # headers: group and size (or its stage's status); the input the edges reach
            x = i * (1 + COLUMN_GAP)
            ax.text(
                x, top, _header(g, len(kept[g]), status[g]), ha="center", va="bottom", fontsize=8,
                color=GROUP_COLORS[g], fontweight="bold",
            )  # fmt: skip
            if g in EDGES:
                ax.text(x + (1 + COLUMN_GAP) / 2, top, f"via {EDGES[g][1]}", ha="center", va="bottom", fontsize=8)
        ax.set_xlim(-0.8, logits_x + 0.8)
        ax.set_ylim(-tallest / 2 - 0.2, top + 0.6 / step)
        ax.axis("off")
        total = sum(len(kept[g]) for g in FLOW)
        note = "empty circuit" if not total else f"{total} heads"
        ax.set_title(
            f"Circuit of {label} ({note})\nshade and number: bootstrap selection frequency; "
            "dashed: receivers of a path-patching stage that minimality dropped"
        )
        save(fig, out_pdf, out_png)
