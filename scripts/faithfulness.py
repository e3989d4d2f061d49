"""Rule faithfulness: one circuit evaluated on one model."""

from entity_tracking.ablation import AblationRuns
from entity_tracking.circuit_eval import run_faithfulness
from entity_tracking.model_specs import model_source
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="circuit.evaluation.seed"):
    s, i, w = sm.config["circuit"]["evaluation"], sm.input, sm.wildcards
    runs = AblationRuns(i.data, i.means, s["batch_size"], s["keep_runs"])
    source = model_source(sm.config, w.model)
    run_faithfulness(w.circuit, i.circuit, source, runs, sm.output[0], seed=s["seed"], random_draws=s["random_draws"])
