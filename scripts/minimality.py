"""Rule minimality: candidates from path patching, pruned to the model's circuit."""

from entity_tracking.ablation import AblationRuns
from entity_tracking.config import circuit_settings
from entity_tracking.job_config import materialize
from entity_tracking.minimality import run_minimality
from entity_tracking.model_specs import model_source
from entity_tracking.path_patching import selection_settings
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed"):
    c, i, o, name = sm.config, sm.input, sm.output, sm.wildcards.model
    settings, evaluation = circuit_settings(c, name), c["circuit"]["evaluation"]
    run_minimality(
        model_source(c, name),
        i.scores,
        i.summary,
        AblationRuns(i.data, i.means, evaluation["batch_size"], evaluation["keep_runs"]),
        o.circuit,
        o.report,
        metric=settings["path_patching"]["metric"],
        selection=selection_settings(settings),
        candidates=materialize(settings["candidates"]),  # the setting whole, every group's
        opts=materialize(settings["minimality"]),
    )
