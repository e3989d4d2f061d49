"""The claims report: the paper's numbers and claims beside ours, each with an honest verdict.

Two kinds of claim, kept apart in the report:

* **headline** — a number of the paper beside ours, within a tolerance. Only
  the paper study runs the paper's models; in every other study these rows are
  ``not applicable``.
* **qualitative** — a claim of the paper tested in this study's models (any study): fine-tuned
  models are more accurate; circuits are faithful, specific and complete; the base circuit
  transfers to and survives in the fine-tuned models; DCM finds position in the position transmitter
  and detector, the object value in the value fetcher, nothing in the structure reader, and (the
  paper's reading of its buggy zeros) no box-label value; CMAP of the value fetcher and position
  transmitter lifts the base; attention knockout along the paper's paths hurts more than to a
  random position.

Verdicts: ``pass``, ``fail``, ``not computed`` (an input does not exist yet; the note names the
file), ``not applicable``.

The criteria, thresholds and tolerances of every claim are written once, in ``docs/claims.md``; the
numbers themselves are constants of :mod:`.results` and :mod:`.headline` (``ALPHA``, ``FAITHFUL``, ...).
Every comparison of two accuracies on the same prompts is a paired test (McNemar's exact test,
:mod:`entity_tracking.stats`) that passes only when significant in the claimed direction.

A claim that needs a group whose path-patching stage found no head beyond noise (or was not run
after such a stage), or that minimality left empty, is ``not applicable`` and its note names the
stage: faithfulness, specificity (random circuits), completeness and survival need every group of
the circuit; DCM, activation patching and CMAP need their group (the full circuit: every group).

To add a claim: write a function ``(Results) -> list[Claim]`` and append it to ``QUALITATIVE``
(:mod:`.qualitative`), or append a :class:`Headline` to ``HEADLINES`` (:mod:`.headline`); list the files it
reads as inputs of rule ``claims``.

Modules: :mod:`.results` (reading a results directory, :class:`Claim`, verdicts), :mod:`.headline`,
:mod:`.qualitative`, :mod:`.render` (markdown, JSON, HTML) and :mod:`.report` (rule ``claims``).
"""

from entity_tracking.claims.headline import (
    HEADLINES,
    Headline,
    close,
    close_field,
    close_relative,
    headline_claims,
    original_floor,
    same_head,
)
from entity_tracking.claims.qualitative import (
    QUALITATIVE,
    base_circuit_faithful_on_finetuned,
    base_circuit_survives,
    box_label_value,
    circuits_beat_random,
    circuits_complete,
    cmap_detector_reader_no_lift,
    cmap_full_circuit_reaches_finetuned,
    cmap_lifts_base,
    finetuned_more_accurate,
    groups_carry_their_information,
    knockout_information_flow,
    own_circuit_faithful,
)
from entity_tracking.claims.render import (
    COLUMNS,
    INTRO,
    SECTIONS,
    VERDICT_COLORS,
    summary,
    write_claims,
    write_claims_html,
)
from entity_tracking.claims.report import evaluate_claims, run_claims
from entity_tracking.claims.results import (
    ALPHA,
    COMPLETE,
    FAIL,
    FAITHFUL,
    GROUP_NAMES,
    LORA_NOTE,
    MARGIN,
    NO_SIGNAL_STATUSES,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    PASS,
    SURVIVES,
    VERDICTS,
    Claim,
    Missing,
    Results,
    Study,
    paired_note,
    unsupported,
)

__all__ = [
    "ALPHA",
    "COLUMNS",
    "COMPLETE",
    "FAIL",
    "FAITHFUL",
    "GROUP_NAMES",
    "HEADLINES",
    "INTRO",
    "LORA_NOTE",
    "MARGIN",
    "NOT_APPLICABLE",
    "NOT_COMPUTED",
    "NO_SIGNAL_STATUSES",
    "PASS",
    "QUALITATIVE",
    "SECTIONS",
    "SURVIVES",
    "VERDICTS",
    "VERDICT_COLORS",
    "Claim",
    "Headline",
    "Missing",
    "Results",
    "Study",
    "base_circuit_faithful_on_finetuned",
    "base_circuit_survives",
    "box_label_value",
    "circuits_beat_random",
    "circuits_complete",
    "close",
    "close_field",
    "close_relative",
    "cmap_detector_reader_no_lift",
    "cmap_full_circuit_reaches_finetuned",
    "cmap_lifts_base",
    "evaluate_claims",
    "finetuned_more_accurate",
    "groups_carry_their_information",
    "headline_claims",
    "knockout_information_flow",
    "original_floor",
    "own_circuit_faithful",
    "paired_note",
    "run_claims",
    "same_head",
    "summary",
    "unsupported",
    "write_claims",
    "write_claims_html",
]
