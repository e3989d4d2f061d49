"""Rule claims: the paper's claims and numbers beside ours, as markdown, JSON and HTML."""

from entity_tracking.claims import Study, run_claims
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm):
    run_claims(sm.params.root, Study.of(sm.config), sm.output.md, sm.output.json, sm.output.html)
