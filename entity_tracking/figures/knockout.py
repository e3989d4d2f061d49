"""Attention knockout curves of one model (the paper's ``last_pos.pdf`` and ``query_box_pos.pdf``).

One panel per blocked-from position (the last token; the query label): accuracy when every head of
layers s..L-1 cannot attend from that position to the condition's target, for each start layer s,
with 95 % intervals as bands and the model's own accuracy as a dashed line. In the paper study
the paper's Llama curves are drawn thin and dotted in the same colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from entity_tracking.figures.style import INK, save, style
from entity_tracking.io import read_json

# condition target -> (colour, marker, label); the paper: random yellow squares, query box blue
# circles, correct object green triangles
TARGETS: dict[str, tuple[str, str, str]] = {
    "correct_object": ("#009E73", "^", "correct object"),
    "query_label": ("#0072B2", "o", "query label"),
    "prev_query_label": ("#CC79A7", "^", "previous query label"),
    "random": ("#E69F00", "s", "random position"),
}
FROM_TITLES = {
    "last": "Blocking attention at the last position",
    "query_label": "Blocking attention at the query label",
}


def plot_knockout(
    knockout: str | Path,
    out_pdf: str | Path,
    out_png: str | Path,
    label: str = "",
    paper: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """The knockout figure of ``knockout/<model>.json``; ``paper``: condition -> the paper's curve."""
    res = read_json(knockout)
    paper = paper or {}
    conditions = res["conditions"]
    sources = list(dict.fromkeys(c["from"] for c in conditions.values()))
    own = res["no_knockout"]["accuracy"]
    layers = list(range(res["layers"]))
    with style():
        fig, axes = plt.subplots(1, len(sources), figsize=(6.0 * len(sources), 4.2), squeeze=False, sharey=True)
        for ax, src in zip(axes[0], sources, strict=True):
            for name, cond in conditions.items():
                if cond["from"] != src:
                    continue
                colour, marker, what = TARGETS.get(cond["to"], (INK, "x", cond["to"]))
                low = [row["ci_low"] for row in cond["curve"]]
                high = [row["ci_high"] for row in cond["curve"]]
                ax.fill_between(layers, low, high, color=colour, alpha=0.15, lw=0)
                ms = 4 if len(layers) > 12 else 6
                ax.plot(layers, cond["accuracy"], marker=marker, ms=ms, color=colour, label=f"→ {what}")
                if name in paper:
                    ax.plot(
                        range(len(paper[name])), paper[name], ls=":", lw=1.2, color=colour, label=f"→ {what} (paper)"
                    )
            ax.axhline(own, color=INK, ls="--", lw=1, label=f"no knockout ({own:.2f})")
            ax.set_ylim(0, 1)
            ax.set_xticks(layers if len(layers) <= 16 else layers[::2])
            ax.set_xlabel("first knocked-out layer s (layers s..L-1 blocked)")
            ax.set_title(FROM_TITLES.get(src, f"Blocking attention at {src}"), fontsize=10)
            ax.grid(True)
            ax.legend(loc="best", fontsize=8)
        axes[0, 0].set_ylabel("task accuracy")
        fig.suptitle(f"Attention knockout in {label or res['model']} ({res['records']} prompts)")
        fig.tight_layout()
        save(fig, out_pdf, out_png)
