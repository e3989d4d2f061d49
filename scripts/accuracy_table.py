"""Rule accuracy_table: one CSV of every model's accuracy."""

from entity_tracking.evaluation import write_accuracy_table
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm):
    write_accuracy_table(sm.input, sm.output[0])
