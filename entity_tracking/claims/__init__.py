"""The claims report: the paper's numbers and claims beside ours, each with an honest verdict.

Two kinds of claim, kept apart in the report:

* **headline** — a number of the paper beside ours, within a tolerance. Only
  the paper profile runs the paper's models; on every other profile these rows are
  ``not applicable``.
* **qualitative** — a claim of the paper tested on this profile's models (any profile): fine-tuned
  models are more accurate; circuits are faithful, specific and complete; the base circuit
  transfers to and survives in the fine-tuned models; DCM finds position in the position transmitter
  and detector, the object value in the value fetcher, nothing in the structure reader, and (the
  paper's reading of its buggy zeros) no box-label value; CMAP of the value fetcher and position
  transmitter lifts the base; attention knockout along the paper's paths hurts more than to a
  random position.

Verdicts: ``pass``, ``fail``, ``not computed`` (an input does not exist yet; the note names the
file), ``not applicable``.

Tolerances of the headline numbers (absolute unless marked):

* accuracies (task, circuit, random circuit, DCM test, CMAP, knockout): ±0.05, about the half-width of
  a 95 % interval on 500 prompts (±0.04) plus the rounding of the paper's two decimals;
* faithfulness: ±0.10 (a ratio of two such accuracies);
* completeness, mean |ΔF| over random K: ±0.05;
* circuit sizes: ±25 % of the paper's total (the data are regenerated and minimality's bugs fixed);
* strongest path-patching head per stage: the same head, and its score ±0.05;
* activation patching: ±0.05, i.e. 5 percentage points (ours are fractions, the paper's percent;
  the report shows the paper's as fractions).

Thresholds of the qualitative claims: faithful means F ≥ 0.80 (the paper: 0.88–1.00); complete
means a mean |ΔF| over random K ≤ 0.15 (the paper: 0.06–0.10); the base circuit survives
fine-tuning when ≥ 50 % of its nodes are in the fine-tuned model's circuit, and more than chance
(the paper: 75 %); specific means more than 0.05 above the best random circuit of the same group
sizes (the paper: 0.66-0.81 against 0.00-0.01).

Every comparison of two accuracies on the same prompts is a **paired test** at level ``ALPHA``
(0.05), and passes only when significant in the claimed direction (:mod:`entity_tracking.stats`,
McNemar's exact test on the discordant prompts):

* a fine-tuned model is more accurate than its base (one-sided);
* DCM: a group carries a piece of information when its test accuracy beats its chance floor (the
  same test pairs, nothing patched) significantly *and* by ≥ 0.05; the structure reader is "near
  its floor" when it does not (the paper: PT 0.362, PD 0.412 and SR 0.140 against the original's
  floor of ~0.13);
* CMAP: patching the fine-tuned model's value fetcher or position transmitter into its base lifts
  the base's accuracy (one-sided); the full circuit lifts it *and* is not significantly below the
  fine-tuned model's accuracy (the paper's "brings the base to the fine-tuned accuracy"); the
  position detector and the structure reader do not lift it significantly;
* knockout along the paper's paths hurts more than its random control: per prompt, the mean
  accuracy over the first half of the start layers (s < L/2, rounded up), blocked minus control;
  an exact sign test that these differences lean below 0, and a mean difference below -0.05.

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
