"""Rule dcm: every (group, desideratum) mask of one circuit."""

from pathlib import Path

from entity_tracking.dcm import run_dcm
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed=sm.params.settings["seed"]):
    data = {Path(f).stem: f for f in sm.input.data}
    desiderata_dir = Path(sm.input.desiderata[0]).parent.parent
    out_root = Path(sm.output[0]).parent.parent.parent
    run_dcm(sm.config, sm.wildcards.circuit, sm.params.model, sm.input.circuit, data, desiderata_dir, out_root)
