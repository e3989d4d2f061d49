"""Rule evaluate: task accuracy of one model."""

from entity_tracking.config import model_label
from entity_tracking.evaluation import run_evaluation
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    c, name, o = sm.config, sm.wildcards.model, sm.output
    spec, settings = c["models"][name], c["evaluation"]
    run_evaluation(
        model_source(c, name),
        model_label(c, name),
        spec["role"],
        sm.input.data,
        o.json,
        o.csv,
        batch_size=settings["batch_size"],
        confidence=settings["confidence"],
    )
