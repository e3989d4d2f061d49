"""Rule dcm_tables: the DCM and activation-patching tables."""

from entity_tracking.activation_patching import write_activation_patching_table, write_dcm_table
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(sm.config["threads"], 0, sm.log[0], job=sm)
write_dcm_table(sm.input.dcm, sm.output.dcm)
write_activation_patching_table(sm.input.activation_patching, sm.output.activation_patching)
