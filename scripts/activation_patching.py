"""Rule activation_patching: every circuit's DCM heads patched into one model."""

from pathlib import Path

from entity_tracking.activation_patching import run_activation_patching
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed=sm.params.settings["seed"]):
    dcm_root = Path(sm.input.dcm[0]).parent.parent.parent if sm.input.dcm else Path("unused")
    run_activation_patching(sm.config, sm.wildcards.model, sm.params.circuits, sm.input.data, dcm_root, sm.output[0])
