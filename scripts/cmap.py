"""Rule cmap: one (source, target) pair, output and input patching."""

from entity_tracking.cmap import run_cmap
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    p = sm.params
    run_cmap(sm.config, p.source, p.target, sm.input.data, sm.input.circuit, dict(p.dcm), sm.output[0])
