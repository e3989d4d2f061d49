"""Rules figure_<name>: draw one figure (PDF and PNG) from result files with entity_tracking.figures.PLOTS."""

import logging

from entity_tracking.figures import PLOTS
from entity_tracking.provenance import recorded

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
logging.basicConfig(filename=sm.log[0], filemode="w", level=logging.INFO, force=True)  # no torch set-up needed
logging.captureWarnings(True)  # a warning lands in the log, where the workflow tests look for it
logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting reports every glyph at INFO
with recorded(sm):  # checks the result files it draws; records the job for the hash manifest
    inputs = {name: value if isinstance(value, str) else list(value) for name, value in sm.input.items()}
    PLOTS[sm.params.name](**inputs, **sm.params.kwargs, out_pdf=sm.output.pdf, out_png=sm.output.png)
    logging.info("wrote %s and %s", sm.output.pdf, sm.output.png)
