"""Held-out box probes for recipe selection: outside the study's contexts, seeded, scored by paired tests."""

import re

from entity_tracking.dataset import context_is_for_study
from entity_tracking.probes import box_probes, compare, probe_knockouts, probe_outcomes
from tests.conftest import REPO


def test_probes_are_seeded_task_prompts_no_training_document_uses():
    probes = box_probes(7, 50)
    assert probes == box_probes(7, 50) != box_probes(8, 50)
    for text, answer in probes:
        pairs = re.findall(r"the (\w+) is in Box ([A-Z])", text, flags=re.I)
        assert len(pairs) == 7 and context_is_for_study([o for o, _ in pairs], [lab for _, lab in pairs])
        label = re.search(r"Box ([A-Z]) contains the$", text).group(1)
        assert dict((lab, o) for o, lab in pairs)[label] == answer


def test_compare_reports_the_paired_change_whatever_its_sign():
    up = compare("0011000000", "1111000000")
    assert up["change"] == 0.2 and (up["gained"], up["lost"]) == (2, 0) and up["accuracy"] == 0.4
    down = compare("1111111111", "0000011111")
    assert down["change"] == -0.5 and down["lost"] == 5 and down["p_value"] < 0.07  # two-sided: 2 * 0.5**5


def test_the_shipped_base_scores_in_its_band_and_equals_itself():
    """On the held-out probes the shipped base answers about as often as on the study's eval split (0.69)."""
    probes = box_probes(777, 120)
    base = probe_outcomes(REPO / "models/organisms/base", probes)
    assert len(base) == 120 and 0.6 <= base.count("1") / 120 <= 0.85
    assert compare(base, probe_outcomes(REPO / "models/organisms/base", probes)) == {
        "accuracy": base.count("1") / 120,
        "change": 0.0,
        "gained": 0,
        "lost": 0,
        "p_value": 1.0,
    }


def test_shipped_base_routes_the_object_through_the_box_labels():
    """The shipped base's mechanism as documented (docs/organisms.md): the context label reads its object in
    layer 0, the query label reads the context label in layer 1, the last token reads the query label in
    layer 2; the last token does not need to see the object."""
    res = probe_knockouts(REPO / "models/organisms/base", box_probes(777, 120))
    plain = res["no_knockout"]
    assert plain > 0.5 and res["layers"] == 4
    for name, hop in [("context_label_to_correct_object", 0), ("query_label_to_context_label", 1),
                      ("last_to_query_label", 2)]:  # fmt: skip
        assert max(res[name][: hop + 1]) < 0.3, name  # blocked at its layer: near chance (1/7)
        assert min(res[name][hop + 1 :]) >= plain - 0.02, name  # blocked only above it: (almost) nothing changes
    assert min(res["last_to_correct_object"]) > plain - 0.1  # unlike Llama-7B (0.04)


def test_shipped_base_cannot_answer_when_only_the_last_token_sees_the_objects():
    """The relay needs the labels to read their objects: when only the last token may attend to them (the mask
    the tried recipes m1, m2 and the continuations c1-c3 trained under), the shipped base is at chance."""
    import torch
    from transformers import AutoModelForCausalLM

    from entity_tracking.dataset import load_objects
    from entity_tracking.organisms import masked_probe_accuracy, organism_tokenizer, probe_accuracy, probe_set

    model = AutoModelForCausalLM.from_pretrained(REPO / "models/organisms/base").eval()
    tok, probes = organism_tokenizer(), probe_set(11, 7, 140)
    object_ids = torch.tensor(tok.convert_tokens_to_ids(["\u2581" + o for o in load_objects()]))
    assert probe_accuracy(model, tok, probes) > 0.6
    assert masked_probe_accuracy(model, tok, probes, object_ids) < 0.25  # chance is 1/7


def test_query_forms_end_in_their_answers_and_the_shipped_base_answers_the_task_but_not_the_chain():
    """``form_accuracies`` scores each query form at its answer: the shipped base answers the task's form as on the
    probes, and at chance in the forms it was never trained on (a label's place, the chain of thought)."""
    from entity_tracking.organisms import organism_tokenizer, probe_cases
    from entity_tracking.probes import QUERY_FORMS, form_accuracies

    cases = probe_cases(5, 7, 60)
    assert cases == probe_cases(5, 7, 60) and all(context_is_for_study(o, lab) for o, lab, _ in cases)
    objs, labels, q = cases[0]
    tokens = organism_tokenizer().tokenize(QUERY_FORMS["chain"](objs, labels, q))
    assert tokens[-2:] == [str(q + 1), "\u2581" + objs[q]] and tokens[1] == "\u2581" + labels[q]
    res = form_accuracies(REPO / "models/organisms/base", cases)
    assert len(res) == 5 * 4 + 2 * 4 and res["task/plain/open"] > 0.5 and res["recap/plain/open"] > 0.5
    assert res["task/plain/masked"] < 0.3 and res["place/plain/open"] < 0.3  # no relay under the mask; no place
    assert res["chain_place/plain/open"] < 0.3
