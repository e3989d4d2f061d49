"""Rule activation_patching: every circuit's DCM heads patched into one model."""

from entity_tracking.activation_patching import run_activation_patching
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="activation_patching.seed"):
    p = sm.params
    run_activation_patching(sm.config, sm.wildcards.model, p.circuits, sm.input.data, p.dcm_dir, sm.output[0])
