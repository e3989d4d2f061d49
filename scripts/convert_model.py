"""Rule convert_model: a GGUF model (or its fallback) saved once as a plain checkpoint."""

from entity_tracking.io import atomic_dir
from entity_tracking.model_specs import loader_spec
from entity_tracking.models import convert_model
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm), atomic_dir(sm.output[0]) as tmp:  # a killed job leaves no half-written checkpoint
    name = sm.wildcards.model
    convert_model(name, loader_spec(sm.config, name), sm.config["model_cache"], tmp)
