"""Rule minimality: candidates from path patching, pruned to the model's circuit."""

from entity_tracking.minimality import run_minimality
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    run_minimality(
        sm.config,
        sm.wildcards.model,
        sm.input.scores,
        sm.input.summary,
        sm.input.data,
        sm.input.means,
        sm.output.circuit,
        sm.output.report,
    )
