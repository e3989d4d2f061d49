"""Rule cmap: one (source, target) pair, output and input patching."""

from entity_tracking.cmap import run_cmap
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
configure(sm.config["threads"], sm.config["dataset"]["seed"], sm.log[0], job=sm)
p = sm.params
run_cmap(sm.config, p.source, p.target, sm.input.data, sm.input.circuit, dict(p.dcm), sm.output[0])
