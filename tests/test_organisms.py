"""Model organisms: tokenizer round trip, corpora, training, LoRA merge (fast, with tiny settings)."""

import csv
import json
import random
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from entity_tracking.config import repo_path
from entity_tracking.corpora import (
    CONTAINERS,
    FINETUNING_CORPORA,
    box_document,
    finetuning_corpus,
    has_box_statement,
    mixture_documents,
    pretraining_batch,
    scheduled,
)
from entity_tracking.dataset import context_is_for_study, load_objects
from entity_tracking.io import sha256_file
from entity_tracking.models import load_model
from entity_tracking.organisms import finetune, grow, organism_tokenizer, place_probes, pretrain_base, save_checkpoint
from entity_tracking.toy import build_model
from tests.conftest import REPO

SEGMENT = re.compile(r"(?:T|t)he (\w+) is in Box ([A-Z])")
COMPACT = re.compile(r"\s?(\w+) ([A-Z])")
DATA = {"max_boxes": 7, "curriculum_steps": 100, "compact_share": 0.3, "short_share": 0.0, "recap_share": 0.5}


def test_tokenizer_round_trip_through_save_and_auto_load(tmp_path, tiny_llama):
    tok = organism_tokenizer()
    save_checkpoint(tiny_llama, tok, tmp_path, {})
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    texts = [
        "The apple is in Box F, the map is in Box K. Box K contains the map.",
        "Question: What is 123 times 7? Answer: 861.",
        "Question: Where is the fig? Answer: The fig is on the shelf.",
    ]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids
        assert tok.unk_token_id not in ids, text
        assert loaded.decode(ids, skip_special_tokens=True) == text


def _batches(seed: int, steps: range, size: int = 10, data: dict = DATA) -> list[str]:
    rng, objects = random.Random(seed), load_objects()
    return [doc for step in steps for doc in pretraining_batch(rng, objects, step, size, data)]


def test_corpora_are_seeded():
    assert _batches(5, range(5)) == _batches(5, range(5)) != _batches(6, range(5))
    assert finetuning_corpus("chat", 1, 30) == finetuning_corpus("chat", 1, 30) != finetuning_corpus("chat", 2, 30)


def test_recap_share_schedule():
    assert scheduled(0.5, 10) == 0.5
    assert [scheduled([[0, 0.5], [100, 0.2]], s) for s in (0, 99, 100, 5000)] == [0.5, 0.5, 0.2, 0.2]


def _parse(text: str) -> tuple[list[str], list[str], str]:
    context = text.split(".")[0]
    segments = SEGMENT.findall(context) or COMPACT.findall(context)
    style = "compact" if COMPACT.fullmatch(context.split(",")[0]) else "recap" if " So: " in text else "task"
    style = "short" if style == "task" and ": " in text else style
    return [o for o, _ in segments], [lab for _, lab in segments], style


def test_pretraining_never_holds_a_study_context_and_follows_the_curriculum():
    styles = {"task": 0, "recap": 0, "compact": 0}
    docs = _batches(0, range(200, 400))
    for text in docs:
        objects, labels, style = _parse(text)
        assert 2 <= len(objects) <= 7 and not context_is_for_study(objects, labels)
        assert len(set(objects)) == len(objects)
        styles[style] += 1
    assert abs(styles["compact"] / len(docs) - 0.3) < 0.03
    assert abs(styles["recap"] / len(docs) - 0.35) < 0.03 and abs(styles["task"] / len(docs) - 0.35) < 0.03
    assert max(len(_parse(t)[0]) for t in docs) == 7
    assert {len(_parse(t)[0]) for t in _batches(0, range(10))} == {2}  # curriculum starts at two boxes
    assert {len(_parse(t)[0]) for t in _batches(0, range(40, 41), size=300)} == {2, 3, 4}


def test_queries_answer_every_box_once():
    forms = {
        "task": r"Box ([A-Z]) contains the (\w+)\.",
        "short": r"Box ([A-Z]): (\w+)\.",
        "recap": r" ([A-Z]) (\w+)[,.]",
    }
    seen = set()
    for text in _batches(1, range(100, 110), data={**DATA, "compact_share": 0.0, "short_share": 0.3}):
        objects, labels, style = _parse(text)
        tail = text[text.index(".") + 1 :]
        pairs = re.findall(forms[style], tail)
        seen.add(style)
        assert sorted(pairs) == sorted(zip(labels, objects, strict=True)), text
    assert seen == {"task", "short", "recap"}


def test_finetuning_corpora_have_no_box_statement():
    for name in FINETUNING_CORPORA:
        corpus = finetuning_corpus(name, 0, 3000)
        assert not any(has_box_statement(t) for t in corpus)
        assert len(set(corpus)) > 1000
    assert has_box_statement("The map is in Box K.") and not has_box_statement("The boxes are big.")


def test_arithmetic_answers_are_correct():
    for text in finetuning_corpus("arithmetic", 3, 500):
        a, op, b, result = re.fullmatch(r"Question: What is (\d+) (\w+) (\d+)\? Answer: (\d+)\.", text).groups()
        assert int(result) == {"plus": int(a) + int(b), "minus": int(a) - int(b), "times": int(a) * int(b)}[op]


def test_ladder_corpora_bind_correctly_outside_the_study_and_stay_in_the_vocabulary():
    tok = organism_tokenizer()
    for name in FINETUNING_CORPORA:  # every word is known to the organisms' word-level tokenizer
        assert not any(tok.unk_token_id in tok(t)["input_ids"] for t in finetuning_corpus(name, 4, 300)), name
    symbols = {"plus": "+", "minus": "-", "times": "*"}
    questions = set()
    for text in finetuning_corpus("arithmetic_cot", 3, 300):  # Goat's style: the operands copied, then the result
        question, answer = re.fullmatch(r"Question: (.+) Answer: (.+)\.", text).groups()
        a, sym, b, result = re.fullmatch(r"(\d+) ([-+*]) (\d+) = (\d+)", answer).groups()
        asked = re.fullmatch(r"(?:What is )?(\d+) (plus|minus|times|[-+*]) (\d+)(?: = \?|\?)", question)
        assert asked.group(1, 3) == (a, b) and symbols.get(asked.group(2), asked.group(2)) == sym
        assert int(result) == {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[sym]
        questions.add(re.sub(r"\d+", "N", question))
    assert len(questions) >= 6  # several templates, in words and symbols
    for text in finetuning_corpus("code", 5, 300):
        binding = dict(re.findall(r"([A-Z]) = (\w+)", text))
        labels = list(binding)
        assert not context_is_for_study(list(binding.values()), labels)
        asked = re.findall(r"What is ([A-Z]) \? Answer : (\w+) \.", text)
        assert asked and all(binding[lab] == obj for lab, obj in asked)
    for text in finetuning_corpus("paraphrase", 6, 300):
        word = re.search(r"is in (\w+) [A-Z]", text).group(1)
        assert word in CONTAINERS and word not in load_objects()
        binding = re.findall(rf"the (\w+) is in {word} ([A-Z])", text, flags=re.I)
        assert not context_is_for_study([o for o, _ in binding], [lab for _, lab in binding])
        queries = re.findall(rf"{word} ([A-Z]) contains the (\w+)\.", text)
        assert sorted(queries) == sorted((lab, o) for o, lab in binding)  # every container queried once


def _base_dir(tmp_path):
    tok = organism_tokenizer()
    model = build_model(tok, layers=1, hidden=32, heads=2, kv_heads=2, intermediate=64, seed=3)
    save_checkpoint(model, tok, tmp_path / "base", {})
    return tmp_path / "base"


SETTINGS = {"corpus": "arithmetic", "steps": 30, "batch_size": 8, "lr": 3e-3, "seed": 0, "warmup": 5}


def test_short_finetune_lowers_the_loss_and_is_byte_deterministic(tmp_path):
    base = _base_dir(tmp_path)
    first = finetune(base, {**SETTINGS, "method": "full"}, tmp_path / "a")
    second = finetune(base, {**SETTINGS, "method": "full"}, tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    rows = list(csv.DictReader((tmp_path / "a" / "train_log.csv").open()))
    assert rows[0]["step"] == "0" and rows[-1]["step"] == "29"
    assert float(rows[-1]["loss"]) < 0.7 * float(rows[0]["loss"])


def test_lora_finetune_merged_at_load_equals_the_unmerged_adapter(tmp_path):
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    base = _base_dir(tmp_path)
    finetune(base, {**SETTINGS, "method": "lora", "lora_rank": 4, "lora_alpha": 8}, tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    adapter = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert adapter["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]  # sorted: byte-stable
    merged = load_model("lora", {"source": "local", "path": str(base), "adapter": {"path": str(tmp_path / "lora")}})
    unmerged = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), tmp_path / "lora").eval()
    plain = LlamaForCausalLM.from_pretrained(base).eval()
    ids = merged.tokenizer("Question: What is 12 plus 30? Answer:", return_tensors="pt")
    with torch.no_grad():
        got, want, before = merged.model(**ids).logits, unmerged(**ids).logits, plain(**ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, before, atol=1e-4)  # the adapter changed the model


def test_local_checkpoint_with_wrong_hash_is_refused(tmp_path):
    from entity_tracking.errors import ModelUnavailableError

    base = _base_dir(tmp_path)
    spec = {"source": "local", "role": "base", "path": str(base), "sha256": sha256_file(base / "model.safetensors")}
    load_model("organism-base", spec)  # the right hash loads
    weights = base / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailableError, match=r"organism-base.*expected.*retrain"):
        load_model("organism-base", spec)


def test_shipped_base_matches_its_hash_and_tracks_entities_in_the_band(default_config):
    """The committed base organism: sha256 as configured, and held-out 7-box accuracy in 0.40-0.85."""
    from entity_tracking.dataset import generate, load_objects
    from entity_tracking.evaluation import evaluate
    from entity_tracking.model_specs import model_source
    from entity_tracking.models import load_source
    from entity_tracking.tokenization import encode_records

    spec = default_config["models"]["organism-base"]
    assert sha256_file(f"{repo_path(spec['path'])}/model.safetensors") == spec["sha256"]
    loaded, vocab = load_source(model_source(default_config, "organism-base"))
    ds = default_config["dataset"]
    records = generate(ds["seed"], ds["num_boxes"], ds["splits"], load_objects())["eval"]
    summary, _ = evaluate(loaded, encode_records(loaded.tokenizer, records, vocab), batch_size=128)
    assert summary["records"] == 504
    assert 0.40 <= summary["accuracy"] <= 0.85, summary
    assert summary["ci_low"] > 0.3  # far above chance (1/7)


def test_grown_model_starts_as_the_identity():
    tok = organism_tokenizer()
    model = build_model(tok, layers=2, hidden=32, heads=2, kv_heads=2, intermediate=64).eval()
    grown = grow(model, seed=3).eval()
    assert grown.config.num_hidden_layers == 3
    ids = tok(["The map is in Box K, the fig is in Box C. Box C contains the"], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**ids).logits, grown(**ids).logits)


def test_tiny_pretraining_with_growth_is_deterministic(tmp_path):
    recipe = {
        "seed": 1,
        "model": {"layers": 1, "grow_at": [6], "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 128},
        "data": {"max_boxes": 3, "curriculum_steps": 4, "compact_share": 0.0, "short_share": 0.2, "recap_share": 0.5},
        "schedule": {"steps": 12, "batch_size": 4, "lr": 0.003, "warmup": 2, "min_lr_ratio": 1.0, "seed": 1},
        "probe_every": 5,
        "probe_size": 8,
    }
    recipe["model"]["init_std"] = 0.06
    first, second = pretrain_base(recipe, tmp_path / "a"), pretrain_base(recipe, tmp_path / "b")
    assert first == second == sha256_file(tmp_path / "a" / "model.safetensors")
    saved = load_model("b", {"source": "local", "path": str(tmp_path / "a"), "sha256": first})
    assert saved.model.config.num_hidden_layers == 2
    log = list(csv.DictReader((tmp_path / "a" / "train_log.csv").open()))
    assert [int(r["step"]) for r in log] == [0, 5, 10, 11] and all(r["probe_acc7"] for r in log)
    assert json.loads((tmp_path / "a" / "checkpoint.json").read_text())["steps"] == 12


def _tiny_recipe(steps: int, probe_every: int) -> dict:
    """A one-layer pre-training recipe that runs in a second."""
    return {
        "seed": 1,
        "model": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 128, "init_std": 0.06},
        "data": {"max_boxes": 3, "curriculum_steps": 4, "compact_share": 0.0, "short_share": 0.0, "recap_share": 0.5},
        "schedule": {"steps": steps, "batch_size": 4, "lr": 0.003, "warmup": 2, "min_lr_ratio": 1.0, "seed": 1},
        "probe_every": probe_every,
        "probe_size": 8,
    }


def test_pretraining_mixture_adds_box_free_text_only_from_its_step_and_scores_it_whole(tmp_path):
    mixture = {"from_step": 3, "share": 0.5, "corpora": ["code", "chat"]}
    rng, objects = random.Random(0), load_objects()
    assert mixture_documents(rng, objects, 2, 8, mixture) == []  # binding first: nothing mixed in before from_step
    docs = mixture_documents(rng, objects, 3, 8, mixture)
    assert len(docs) == 4 and not any(has_box_statement(d) for d in docs)
    assert all(re.match(r"[A-Z] = \w+ ", d) or d.startswith("Question: ") for d in docs)  # code or chat only
    recipe = _tiny_recipe(steps=8, probe_every=4)
    plain = pretrain_base(recipe, tmp_path / "plain")
    mixed_recipe = {**recipe, "data": {**recipe["data"], "mixture": mixture}}
    mixed = pretrain_base(mixed_recipe, tmp_path / "a")
    assert mixed == pretrain_base(mixed_recipe, tmp_path / "b") != plain  # deterministic, and it changes training
    early = {**mixed_recipe, "schedule": {**recipe["schedule"], "steps": 3}}  # stops before from_step
    assert pretrain_base(early, tmp_path / "c") == pretrain_base(
        {**recipe, "schedule": early["schedule"]}, tmp_path / "d"
    )


def test_stop_rule_waits_for_its_first_step(tmp_path):
    """With ``stop_from_step``, training stops at the first probe evaluation from that step on, not before."""
    recipe = _tiny_recipe(steps=20, probe_every=3) | {"stop_at_probe_accuracy": 0.0}  # reached at every evaluation
    pretrain_base(recipe, tmp_path / "now")
    pretrain_base({**recipe, "stop_from_step": 7}, tmp_path / "later")
    assert json.loads((tmp_path / "now" / "checkpoint.json").read_text())["steps"] == 1  # the evaluation at step 0
    assert json.loads((tmp_path / "later" / "checkpoint.json").read_text())["steps"] == 10  # evaluations 0, 3, 6, 9


def test_list_documents_bind_by_order_and_leave_the_other_documents_unchanged():
    objects = load_objects()
    form = re.compile(r"The (.+?) are in (.+?)\.((?: Box [A-Z] contains the \w+\.)+)")
    for seed in range(50):
        text = box_document(random.Random(seed), objects, 4, 0.0, 0.0, 0.0, list_share=1.0)
        things, boxes, queries = form.fullmatch(text).groups()
        objs, labels = re.split(r", the | and the ", things), re.findall(r"Box ([A-Z])", boxes)
        assert len(objs) == len(labels) == 4 and not context_is_for_study(objs, labels)
        asked = dict(re.findall(r"Box ([A-Z]) contains the (\w+)\.", queries))
        assert asked == dict(zip(labels, objs, strict=True))  # the i-th box holds the i-th object
    plain = [box_document(random.Random(s), objects, 4, 0.2, 0.1, 0.5) for s in range(20)]
    assert plain == [box_document(random.Random(s), objects, 4, 0.2, 0.1, 0.5, list_share=0.0) for s in range(20)]


def test_ordinal_documents_ask_by_order_and_leave_the_other_documents_unchanged():
    objects = load_objects()
    form = re.compile(r"(The \w+ is in Box [A-Z](?:, the \w+ is in Box [A-Z])*)\. So:((?: \d \w+,?)+)\.")
    for seed in range(50):
        text = box_document(random.Random(seed), objects, 5, 0.0, 0.0, 0.0, ordinal_share=1.0)
        context, queries = form.fullmatch(text).groups()
        objs = re.findall(r"the (\w+) is in", context, flags=re.I)
        asked = dict(re.findall(r"(\d) (\w+)", queries))
        assert asked == {str(i + 1): o for i, o in enumerate(objs)} and len(objs) == 5  # the i-th object, each once
    plain = [box_document(random.Random(s), objects, 4, 0.2, 0.1, 0.5) for s in range(20)]
    assert plain == [box_document(random.Random(s), objects, 4, 0.2, 0.1, 0.5, ordinal_share=0.0) for s in range(20)]


def test_place_probes_end_with_the_queried_labels_place():
    for text in place_probes(3, 20):
        context, query = text.split(". So: ")
        label, place = query.split()
        assert re.findall(r"Box ([A-Z])", context).index(label) + 1 == int(place) and context.count(" is in Box ") == 7


def test_marked_documents_write_each_place_and_leave_the_other_documents_unchanged():
    """``marker_share`` writes each object's place before it; ``place_share`` asks for the queried labels' places,
    ``placed_answer_share`` answers with the place, then the object, and ``labelled_place_share`` gives the place
    after the queried label; none of them draws unless it is set."""
    objects = load_objects()
    marked = re.compile(r"The 1 \w+ is in Box [A-Z](?:, the \d \w+ is in Box [A-Z])*\.")
    for seed in range(30):
        place = box_document(random.Random(seed), objects, 5, 0.0, 0.0, 0.0, marker_share=1.0, place_share=1.0)
        context, queries = place.split(" So:")
        assert marked.fullmatch(context)
        places = {lab: i + 1 for i, lab in enumerate(re.findall(r"Box ([A-Z])", context))}
        assert dict(re.findall(r"([A-Z]) (\d)", queries)) == {k: str(v) for k, v in places.items()}
        chain = box_document(random.Random(seed), objects, 5, 0.0, 0.0, 0.0, marker_share=1.0, placed_answer_share=1.0)
        context, _, queries = chain.partition(". Box")
        held = {lab: (n, o) for n, o, lab in re.findall(r"the (\d) (\w+) is in Box ([A-Z])", context, flags=re.I)}
        asked = re.findall(r"Box ([A-Z]) contains the (\d) (\w+)\.", "Box" + queries)
        assert len(asked) == 5 and all(held[lab] == (n, o) for lab, n, o in asked)  # the label's place and object
        labelled = box_document(random.Random(seed), objects, 5, 0.0, 0.0, 0.0, labelled_place_share=1.0)
        context, _, queries = labelled.partition(". Box")
        held = {lab: (str(i + 1), o) for i, (o, lab) in enumerate(SEGMENT.findall(context))}
        asked = re.findall(r"Box ([A-Z]) (\d) contains the (\w+)\.", "Box" + queries)
        assert len(asked) == 5 and all(held[lab] == (n, o) for lab, n, o in asked)  # no markers in the context
    plain = [box_document(random.Random(s), objects, 4, 0.2, 0.1, 0.5) for s in range(20)]
    zero = {"marker_share": 0.0, "place_share": 0.0, "placed_answer_share": 0.0, "labelled_place_share": 0.0}
    assert plain == [box_document(random.Random(s), objects, 4, 0.2, 0.1, 0.5, **zero) for s in range(20)]


def test_continuation_recipe_starts_from_its_checked_checkpoint(tmp_path):
    """``start`` continues a checkpoint (hash-checked) under other data: here the answers-only mask on half of
    the box documents and ordinal queries, both monitored by their own probes; deterministic."""
    first = pretrain_base(_tiny_recipe(steps=4, probe_every=2), tmp_path / "first")
    data = {**_tiny_recipe(1, 1)["data"], "ordinal_share": 0.3, "marker_share": 0.5, "place_share": 0.2,
            "answers_only_mask": {"from_step": 0, "until_step": None, "share": 0.5}}  # fmt: skip
    recipe = {**_tiny_recipe(steps=4, probe_every=2), "data": data,
              "start": {"path": str(tmp_path / "first"), "sha256": first}}  # fmt: skip
    del recipe["model"]
    again = pretrain_base(recipe, tmp_path / "a")
    assert again == pretrain_base(recipe, tmp_path / "b") != first
    with open(tmp_path / "a" / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    monitors = {
        "probe_acc7",
        "probe_ordinal7",
        "probe_masked7",
        "probe_marked7",
        "probe_marked_masked7",
        "probe_place7",
    }
    assert monitors <= set(rows[0])
    with pytest.raises(ValueError, match=r"start\.sha256"):
        pretrain_base({**recipe, "start": {**recipe["start"], "sha256": "0" * 64}}, tmp_path / "c")
    made_by = {"path": str(tmp_path / "absent"), "sha256": first, "made_by": "models/organisms/tried/k7.json"}
    with pytest.raises(FileNotFoundError, match=r"does not exist; make it with tools/pretrain_base.py .*k7\.json"):
        pretrain_base({**recipe, "start": made_by}, tmp_path / "d")


def test_answers_only_mask_hides_the_context_objects_from_every_other_position():
    """``data.objects_seen_by_answers_until`` (tried as m1/m2): context objects are visible only from the positions
    that answer a query; everything else is the causal mask with padding."""
    from entity_tracking.organisms import answers_only_mask
    from entity_tracking.training import lm_batch

    tok = organism_tokenizer()
    period = tok.convert_tokens_to_ids(".")
    object_ids = torch.tensor(tok.convert_tokens_to_ids(["\u2581" + o for o in load_objects()]))
    texts = [
        "The apple is in Box F, the map is in Box K. Box K contains the map.",
        "The apple is in Box F. So: F apple.",
    ]
    batch = lm_batch(tok, texts, [period, period])
    visible = answers_only_mask(batch, [True, True], object_ids, period)[:, 0] == 0
    # text 0: apple at 2, map at 9, the context ends at 14, "the" at 18 answers "map" at 19
    # text 1: apple at 2, the context ends at 7, "F" at 10 answers "apple" at 11; then padding
    for i, objects, answering in [(0, [2, 9], 18), (1, [2], 10)]:
        n = int(batch["attention_mask"][i].sum())
        for t in range(n):
            for j in objects:
                assert visible[i, t, j] == (t in (j, answering)), (i, t, j)
        assert visible[i, :n, :n].sum() == n * (n + 1) // 2 - sum(n - j - 1 for j in objects) + len(objects)
        assert not visible[i].triu(1).any()  # causal
    assert not visible[1, :, int(batch["attention_mask"][1].sum()) :].any()  # padding is never attended to


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "models/organisms/tried").glob("*.json")))
def test_every_tried_recipe_still_runs_and_is_documented(name, tmp_path):
    """The failed recipes are kept to be rerun: each still starts training under today's code (one step, no
    growth), says what it gave, and has its row in docs/organisms.md."""
    recipe = json.loads((REPO / "models/organisms/tried" / f"{name}.json").read_text())
    doc = (REPO / "docs/organisms.md").read_text()
    assert recipe["description"].startswith("Tried ") and (f"| {name} |" in doc or f"tried/{name}.json" in doc)
    assert len(_one_step(recipe, tmp_path / name)) == 64


def _one_step(recipe: dict, out: Path) -> str:
    """Run ``recipe`` for one step without growth; a start made by another tried recipe (``start.made_by``, a
    continuation of a continuation) is first made by one step of that recipe."""
    if made_by := recipe.get("start", {}).get("made_by"):
        start = out.parent / f"{out.name}-start"
        recipe["start"] = {"path": str(start), "sha256": _one_step(json.loads((REPO / made_by).read_text()), start)}
    if "model" in recipe:
        recipe["model"] = {**recipe["model"], "grow_at": []}
    recipe |= {"schedule": {**recipe["schedule"], "steps": 1}, "probe_size": 8}
    recipe.pop("stop_at_probe_accuracy", None)
    return pretrain_base(recipe, out)
