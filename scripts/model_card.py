"""Rule model_card: load and check one model, record its source, architecture and positions."""

from entity_tracking.io import read_jsonl
from entity_tracking.models import write_model_card
from entity_tracking.runtime import job_context

sm = snakemake  # type: ignore[name-defined]  # noqa: F821
with job_context(sm, seed="dataset.seed") as log:
    example = read_jsonl(sm.input.example)[0]
    card = write_model_card(sm.config, sm.wildcards.model, example, sm.output[0])
    log.info("%s: %s", sm.wildcards.model, card["architecture"])
