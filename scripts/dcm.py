"""Rule dcm: every (group, desideratum) mask of one circuit."""

from pathlib import Path

from entity_tracking.dcm import run_dcm
from entity_tracking.job_config import materialize
from entity_tracking.layout import dcm_plan
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dcm.seed"):
    data = {Path(f).stem: f for f in sm.input.data}
    c, p = sm.config, sm.params
    source = model_source(c, p.model)
    settings = materialize(c["dcm"])
    run_dcm(sm.wildcards.circuit, source, sm.input.circuit, data, p.desiderata_dir, p.dcm_dir, dcm_plan(c), settings)
