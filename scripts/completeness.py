"""Rule completeness: a model's own circuit against random and whole-group knockouts."""

from entity_tracking.ablation import AblationRuns
from entity_tracking.circuit_eval import run_completeness
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.evaluation.seed"):
    s, i = sm.config["circuit"]["evaluation"], sm.input
    runs = AblationRuns(i.data, i.means, s["batch_size"], s["keep_runs"])
    source = model_source(sm.config, sm.wildcards.model)
    run_completeness(source, i.circuit, runs, sm.output[0], seed=s["seed"], draws=s["completeness_draws"])
