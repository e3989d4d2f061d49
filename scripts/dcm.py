"""Rule dcm: every (group, desideratum) mask of one circuit."""

from pathlib import Path

from entity_tracking.dcm import run_dcm
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dcm.seed"):
    data = {Path(f).stem: f for f in sm.input.data}
    p = sm.params
    run_dcm(sm.config, sm.wildcards.circuit, p.model, sm.input.circuit, data, p.desiderata_dir, p.dcm_dir)
