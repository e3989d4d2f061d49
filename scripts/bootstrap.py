"""Rule bootstrap: selection frequencies of every head from the stored per-example path-patching scores."""

from entity_tracking.runtime import configure
from entity_tracking.selection import run_bootstrap

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(1, sm.params.selection["bootstrap_seed"], sm.log[0], job=sm)
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
