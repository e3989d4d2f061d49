"""Rule completeness: a model's own circuit against random and whole-group knockouts."""

from entity_tracking.circuit_eval import run_completeness
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.evaluation.seed"):
    run_completeness(sm.config, sm.wildcards.model, sm.input.circuit, sm.input.data, sm.input.means, sm.output[0])
