"""Rule knockout: the attention knockout curves of one model."""

from entity_tracking.knockout import run_knockout
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="knockout.seed"):
    run_knockout(sm.config, sm.wildcards.model, sm.input.data, sm.output[0])
