"""Rule bootstrap: selection frequencies of every head from the stored per-example path-patching scores."""

from entity_tracking.config import circuit_settings
from entity_tracking.job_config import materialize
from entity_tracking.runtime import job_context
from entity_tracking.selection import run_bootstrap

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.selection.bootstrap_seed"):
    settings = circuit_settings(sm.config, sm.wildcards.model)
    run_bootstrap(
        sm.wildcards.model,
        sm.input.scores,
        sm.input.summary,
        sm.input.circuit,
        materialize(settings["candidates"]),
        settings["path_patching"]["metric"],
        materialize(settings["selection"]),
        sm.output.csv,
        sm.output.json,
    )
