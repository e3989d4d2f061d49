"""Rule desiderata: base/source pairs of every desideratum on the DCM splits."""

from pathlib import Path

from entity_tracking.desiderata import write_desiderata
from entity_tracking.io import read_jsonl
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed=sm.params.seed):
    records = {Path(f).stem: read_jsonl(f) for f in sm.input}
    write_desiderata(records, sm.params.desiderata, sm.params.seed, Path(sm.output.manifest).parent)
