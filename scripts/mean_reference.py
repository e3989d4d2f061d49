"""Rule mean_reference: the mean-ablation reference of one model."""

from entity_tracking.ablation import run_mean_reference
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.mean_seed"):
    run_mean_reference(sm.config, sm.wildcards.model, sm.input.data, sm.output[0])
