"""Rule faithfulness: one circuit evaluated on one model."""

from entity_tracking.circuit_eval import run_faithfulness
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(sm.config["threads"], sm.params.settings["seed"], sm.log[0], job=sm)
w = sm.wildcards
run_faithfulness(sm.config, w.circuit, sm.input.circuit, w.model, sm.input.data, sm.input.means, sm.output[0])
