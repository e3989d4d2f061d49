"""Rule manifest: merge the job records into results/<study>/manifest.json and write provenance.json."""

from entity_tracking.provenance import write_manifest
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm) as log:  # recorded, so that verify and benchmark_summary can check what they read
    manifest = write_manifest(
        sm.config["study"], sm.params.targets, sm.config, sm.output.manifest, sm.output.provenance
    )
    log.info("manifest: %d files from %d jobs", len(manifest["files"]), len(manifest["jobs"]))
