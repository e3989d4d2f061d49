"""Rule cmap: one (source, target) pair, output and input patching."""

from entity_tracking.cmap import CmapSettings, run_cmap
from entity_tracking.layout import circuit_name
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    c, p = sm.config, sm.params
    source, target = model_source(c, p.source), model_source(c, p.target)
    name = circuit_name(c, p.source, p.target)
    run_cmap(source, target, name, sm.input.data, sm.input.circuit, dict(p.dcm), sm.output[0], CmapSettings.of(c))
