"""One look for every figure: font, colours per head group and model role, and deterministic saving.

The font is DejaVu Sans, shipped inside matplotlib (the paper used Times New Roman, which is not
installed here), so every machine draws the same glyphs. PDFs and PNGs carry no creation date or
software version, so the same inputs give the same bytes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt

from entity_tracking.io import atomic_write

# Okabe-Ito colours; the groups keep the paper's hues (A green, B yellow, C magenta, D blue).
GROUP_COLORS: dict[str, str] = {
    "value_fetcher": "#009E73",
    "pos_transmitter": "#E69F00",
    "pos_detector": "#CC79A7",
    "struct_reader": "#0072B2",
}
GROUP_LABELS: dict[str, str] = {
    "value_fetcher": "Value fetcher",
    "pos_transmitter": "Position transmitter",
    "pos_detector": "Position detector",
    "struct_reader": "Structure reader",
}
GROUP_SHORT: dict[str, str] = {
    "value_fetcher": "VF",
    "pos_transmitter": "PT",
    "pos_detector": "PD",
    "struct_reader": "SR",
}
ROLE_COLORS: dict[str, str] = {"base": "#56B4E9", "finetuned": "#D55E00"}
ROLE_LABELS: dict[str, str] = {"base": "base model", "finetuned": "fine-tuned model"}
MAIN_DESIDERATA: tuple[str, ...] = ("positional", "object_value", "box_label_value")  # DCM, every group
DESIDERATUM_SHORT: dict[str, str] = {"positional": "pos", "object_value": "obj", "box_label_value": "label"}
MUTED = "#C8C8C8"  # candidates outside a circuit, empty cells
INK = "#333333"  # reference lines, random draws
DPI = 200

RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "svg.hashsalt": "entity-tracking",
    "pdf.fonttype": 42,
    "savefig.dpi": DPI,
    "figure.dpi": 100,
}


@contextmanager
def style() -> Iterator[None]:
    """Every plot function draws inside this: the shared rc settings, figures closed afterwards."""
    with matplotlib.rc_context(RC):
        try:
            yield
        finally:
            plt.close("all")


def wrap(label: str, width: int = 16) -> str:
    """A long model or circuit label broken over lines for tick labels."""
    return "\n".join(textwrap.wrap(label, width)) or label


def save(fig: Any, out_pdf: str | Path, out_png: str | Path) -> None:
    """Write the figure as PDF and PNG (dpi 200), atomically and without timestamps or versions."""
    with atomic_write(out_pdf, "wb") as fh:
        fig.savefig(fh, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    with atomic_write(out_png, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
