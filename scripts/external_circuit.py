"""Rule external_circuit: check a circuit JSON given in the config and copy it into the results."""

from entity_tracking.circuits import load_circuit, save_circuit
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm):
    save_circuit(sm.output[0], load_circuit(sm.input[0]))
