"""Rule dcm_tables: the DCM and activation-patching tables."""

from entity_tracking.activation_patching import write_activation_patching_table, write_dcm_table
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm):
    write_dcm_table(sm.input.dcm, sm.output.dcm)
    write_activation_patching_table(sm.input.activation_patching, sm.output.activation_patching)
