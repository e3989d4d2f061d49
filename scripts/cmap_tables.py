"""Rule cmap_tables: the CMAP and knockout tables."""

from entity_tracking.cmap import write_cmap_table
from entity_tracking.knockout import write_knockout_table
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(1, 0, sm.log[0], job=sm)
write_cmap_table(sm.input.cmap, sm.output.cmap)
write_knockout_table(sm.input.knockout, sm.output.knockout)
