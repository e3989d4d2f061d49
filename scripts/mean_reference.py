"""Rule mean_reference: the mean-ablation reference of one model."""

from entity_tracking.ablation import run_mean_reference
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(sm.config["threads"], sm.params.seed, sm.log[0], job=sm)
run_mean_reference(sm.config, sm.wildcards.model, sm.input.data, sm.output[0])
