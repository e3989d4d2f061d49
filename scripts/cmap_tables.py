"""Rule cmap_tables: the CMAP and knockout tables."""

from entity_tracking.cmap import write_cmap_table
from entity_tracking.knockout import write_knockout_table
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm):
    write_cmap_table(sm.input.cmap, sm.output.cmap)
    write_knockout_table(sm.input.knockout, sm.output.knockout)
