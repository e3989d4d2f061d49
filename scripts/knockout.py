"""Rule knockout: the attention knockout curves of one model."""

from entity_tracking.knockout import run_knockout
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="knockout.seed"):
    c = sm.config
    s = c["knockout"]
    run_knockout(
        model_source(c, sm.wildcards.model),
        sm.input.data,
        sm.output[0],
        conditions=s["conditions"],
        seed=s["seed"],
        batch_size=s["batch_size"],
        confidence=c["evaluation"]["confidence"],
    )
