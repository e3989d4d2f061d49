"""Rule mean_reference: the mean-ablation reference of one model."""

from entity_tracking.ablation import run_mean_reference
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.mean_seed"):
    c = sm.config
    source = model_source(c, sm.wildcards.model)
    seed, batch_size = c["circuit"]["mean_seed"], c["circuit"]["evaluation"]["batch_size"]
    run_mean_reference(source, sm.input.data, sm.output[0], seed=seed, batch_size=batch_size)
