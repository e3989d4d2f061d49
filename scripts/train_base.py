"""Rule train_base: pre-train a base organism from its recipe."""

from entity_tracking.io import atomic_dir, read_json
from entity_tracking.organisms import pretrain_base
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
recipe = read_json(sm.input.recipe)
with job_context(sm, seed=recipe["seed"]) as log:
    with atomic_dir(sm.output[0]) as tmp:  # a killed job leaves no half-written checkpoint
        digest = pretrain_base(recipe, tmp)
    log.info("%s: weights sha256 %s", sm.wildcards.model, digest)
