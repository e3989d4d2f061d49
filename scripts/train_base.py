"""Rule train_base: pre-train a base organism from its recipe."""

from entity_tracking.io import read_json
from entity_tracking.organisms import pretrain_base
from entity_tracking.runtime import configure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
recipe = read_json(sm.input.recipe)
log = configure(sm.config["threads"], recipe["seed"], sm.log[0])
digest = pretrain_base(recipe, sm.output[0])
log.info("%s: weights sha256 %s", sm.wildcards.model, digest)
