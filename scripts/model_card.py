"""Rule model_card: load and check one model, record its source, architecture and positions."""

from entity_tracking.config import model_label
from entity_tracking.io import read_jsonl
from entity_tracking.model_specs import model_source
from entity_tracking.models import write_model_card
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed") as log:
    name = sm.wildcards.model
    spec = sm.config["models"][name]
    example = read_jsonl(sm.input.example)[0]
    source = model_source(sm.config, name)
    card = write_model_card(
        source, model_label(sm.config, name), spec["role"], spec.get("base_model"), example, sm.output[0]
    )
    log.info("%s: %s", sm.wildcards.model, card["architecture"])
