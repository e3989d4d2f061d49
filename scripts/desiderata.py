"""Rule desiderata: base/source pairs of every desideratum on the DCM splits."""

from pathlib import Path

from entity_tracking.desiderata import write_desiderata
from entity_tracking.io import read_jsonl
from entity_tracking.layout import dcm_desiderata
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dcm.seed"):
    records = {Path(f).stem: read_jsonl(f) for f in sm.input}
    desiderata = dcm_desiderata(sm.config)
    write_desiderata(records, desiderata, sm.config["dcm"]["seed"], Path(sm.output.manifest).parent)
