"""Rule faithfulness: one circuit evaluated on one model."""

from entity_tracking.circuit_eval import run_faithfulness
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.evaluation.seed"):
    w = sm.wildcards
    run_faithfulness(sm.config, w.circuit, sm.input.circuit, w.model, sm.input.data, sm.input.means, sm.output[0])
