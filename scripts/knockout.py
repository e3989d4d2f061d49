"""Rule knockout: the attention knockout curves of one model."""

from entity_tracking.knockout import run_knockout
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(sm.config["threads"], sm.params.settings["seed"], sm.log[0], job=sm)
run_knockout(sm.config, sm.wildcards.model, sm.input.data, sm.output[0])
