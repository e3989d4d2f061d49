"""Rule evaluate: task accuracy of one model."""

from entity_tracking.evaluation import run_evaluation
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    run_evaluation(sm.config, sm.wildcards.model, sm.input.data, sm.output.json, sm.output.csv)
