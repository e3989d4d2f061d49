"""Rule bootstrap: selection frequencies of every head from the stored per-example path-patching scores."""

from entity_tracking.runtime import job_context
from entity_tracking.selection import run_bootstrap

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed=sm.params.selection["bootstrap_seed"]):
    run_bootstrap(
        sm.wildcards.model,
        sm.input.scores,
        sm.input.summary,
        sm.input.circuit,
        sm.params.candidates,
        sm.params.metric,
        sm.params.selection,
        sm.output.csv,
        sm.output.json,
    )
