"""Rule activation_patching: every circuit's DCM heads patched into one model."""

from entity_tracking.activation_patching import run_activation_patching
from entity_tracking.layout import dcm_plan
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="activation_patching.seed"):
    c, p = sm.config, sm.params
    run_activation_patching(
        model_source(c, sm.wildcards.model),
        p.circuits,
        sm.input.data,
        p.dcm_dir,
        sm.output[0],
        plan=dcm_plan(c),
        seed=c["activation_patching"]["seed"],
        repeats=c["activation_patching"]["repeats"],
        batch_size=c["activation_patching"]["batch_size"],
        cache_clean_runs=c["dcm"]["cache_clean_runs"],
    )
