"""Rule evaluate: task accuracy of one model."""

from entity_tracking.evaluation import run_evaluation
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(sm.config["threads"], sm.config["dataset"]["seed"], sm.log[0], job=sm)
run_evaluation(sm.config, sm.wildcards.model, sm.input.data, sm.output.json, sm.output.csv)
