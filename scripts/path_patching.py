"""Rule path_patching: the four stages on the discovery split."""

from entity_tracking.path_patching import run_path_patching
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    run_path_patching(sm.config, sm.wildcards.model, sm.input.data, sm.output.scores, sm.output.summary)
