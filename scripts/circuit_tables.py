"""Rule circuit_tables: faithfulness, completeness and overlap tables."""

from entity_tracking.circuit_eval import write_completeness_table, write_faithfulness_table, write_overlap
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm):
    write_faithfulness_table(sm.input.faithfulness, sm.output.faithfulness)
    write_completeness_table(sm.input.completeness, sm.output.completeness)
    bootstrap = dict(zip(sm.params.models, sm.input.bootstrap, strict=True))
    write_overlap(sm.params.circuits, sm.input.circuits, sm.output.overlap, sm.output.overlap_json, bootstrap)
