"""Rule path_patching: the four stages on the discovery split."""

from entity_tracking.config import circuit_settings
from entity_tracking.job_config import materialize
from entity_tracking.model_specs import model_source
from entity_tracking.path_patching import run_path_patching, selection_settings
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    c, o, name = sm.config, sm.output, sm.wildcards.model
    settings = circuit_settings(c, name)
    source = model_source(c, name)
    pp, selection = materialize(settings["path_patching"]), selection_settings(settings)
    run_path_patching(source, sm.input.data, o.scores, o.summary, settings=pp, selection=selection)
