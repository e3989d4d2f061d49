"""Rule benchmark_summary: wall time and peak memory per rule from the jobs' benchmark files (CSV and HTML)."""

from entity_tracking.job_timings import write_benchmark_summary
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, record=False):  # no record: timings are not results, stay out of the manifest
    write_benchmark_summary(sm.params.root, sm.output.csv, sm.output.html, sm.config["study"])
