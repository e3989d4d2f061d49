"""Rule dataset: generate every split of the entity-tracking data."""

from entity_tracking.dataset import write_dataset
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed") as log:
    s = sm.config["dataset"]
    out_dir = sm.output.manifest.rsplit("/", 1)[0]
    manifest = write_dataset(out_dir, s["seed"], s["num_boxes"], dict(s["splits"]), s.get("objects_file"))
    log.info("wrote %s", {k: v["records"] for k, v in manifest["splits"].items()})
