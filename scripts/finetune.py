"""Rule finetune: make a fine-tuned organism from its base."""

from pathlib import Path

from entity_tracking.io import atomic_dir
from entity_tracking.job_config import materialize
from entity_tracking.model_specs import effective_spec
from entity_tracking.models import check_weights
from entity_tracking.organisms import finetune
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed=f"models.{sm.wildcards.model}.finetune.seed") as log:
    spec = sm.config["models"][sm.wildcards.model]
    base = spec["base_model"]
    base_spec = effective_spec(sm.config, base)
    if base_spec.get("sha256"):
        check_weights(base, Path(sm.input.base), base_spec["sha256"])
    with atomic_dir(sm.output[0]) as tmp:  # a killed job leaves no half-written checkpoint
        digest = finetune(sm.input.base, materialize(spec["finetune"]), tmp)
    log.info("%s: weights sha256 %s", sm.wildcards.model, digest)
