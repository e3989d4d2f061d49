"""Figures of the study, drawn from result files only: one ``plot_<name>(inputs..., out_pdf, out_png)`` each.

``PLOTS`` maps a figure's name (as used by ``rules/figures.smk``) to its function. To add a figure,
write its function in a module of this package, and add one entry here and one in the rule file's
``FIGURES`` list.
"""

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # before any pyplot import: files only, no display

from entity_tracking.figures.accuracy import plot_accuracy
from entity_tracking.figures.activation_patching import plot_activation_patching
from entity_tracking.figures.causal_impact import plot_causal_impact
from entity_tracking.figures.circuit_diagram import plot_circuit_diagram
from entity_tracking.figures.cmap import plot_cmap
from entity_tracking.figures.completeness import plot_completeness
from entity_tracking.figures.dcm import plot_dcm
from entity_tracking.figures.faithfulness import plot_faithfulness
from entity_tracking.figures.knockout import plot_knockout

PLOTS: dict[str, Callable[..., None]] = {
    "accuracy": plot_accuracy,
    "causal_impact": plot_causal_impact,
    "completeness": plot_completeness,
    "faithfulness": plot_faithfulness,
    "circuit_diagram": plot_circuit_diagram,
    "dcm": plot_dcm,
    "activation_patching": plot_activation_patching,
    "cmap": plot_cmap,
    "knockout": plot_knockout,
}

__all__ = ["PLOTS", *(f.__name__ for f in PLOTS.values())]
